# Logging and stage helpers, sourced by every recipe and stage script.

log() {
  # log MESSAGE...: timestamped message on stderr, prefixed with the calling script. With $stage_times set
  # (a file), a message "Stage N: ..." also appends "N<TAB>unix time" to it (the report's recipe wall time).
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
  if [ -n "${stage_times:-}" ] && [[ "$*" =~ ^Stage\ ([0-9]+): ]]; then
    mkdir -p "$(dirname "$stage_times")" && printf '%s\t%s\n' "${BASH_REMATCH[1]}" "$(date +%s)" >> "$stage_times"
  fi
}

require_asrdistill() {
  # Fail early with a useful message when the CLI is not on PATH.
  if ! command -v asrdistill >/dev/null 2>&1; then
    echo "asrdistill is not on PATH: run 'make demo' at the project root, or activate .venv" >&2
    exit 1
  fi
}

stage_done() {
  # stage_done MARKER: true (and logs) when MARKER exists, i.e. the stage already ran.
  if [ -f "$1" ]; then
    log "$1 exists: stage already done (remove it to run the stage again)"
    return 0
  fi
  return 1
}

mark_done() {
  # mark_done MARKER: record that a stage finished.
  mkdir -p "$(dirname "$1")" && touch "$1"
}
