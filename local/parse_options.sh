# Kaldi-style option parsing, sourced by every recipe and stage script.
#
# For each "--some-name value" (or "--some-name=value") on the command line, sets the
# shell variable some_name, which the sourcing script must already define (its
# default). An option with no such variable is an error, so typos never pass silently.
# An option whose variable holds an integer (--stage 0, --nj 4) takes integers only: any
# other value is an error naming the option, not a "[: integer expression expected" per
# stage later on.
# "--help" prints $help_message (if set) and the options with their current values.
# Positional arguments are left in "$@".

__po_usage() {
  [ -n "${help_message:-}" ] && printf '%s\n' "$help_message"
  echo "Options (current values):"
  for __po_v in ${__po_vars:-}; do
    printf '  --%s %s\n' "${__po_v//_/-}" "${!__po_v}"
  done
}

__po_vars=$(set -o posix; set | sed -n 's/^\([a-z][a-z0-9_]*\)=.*/\1/p' | grep -vxE 'root|help_message' | tr '\n' ' ')

__po_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      __po_usage; exit 0 ;;
    --)
      shift; __po_args+=("$@"); break ;;
    --*=*)
      __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
    --*)
      __po_name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      __po_value="$2"; shift 2 ;;
    *)
      __po_args+=("$1"); shift; continue ;;
  esac
  __po_var="${__po_name#--}"; __po_var="${__po_var//-/_}"
  if ! [[ "$__po_var" =~ ^[a-z][a-z0-9_]*$ ]] || ! declare -p "$__po_var" >/dev/null 2>&1; then
    echo "$0: unknown option $__po_name" >&2
    echo "$0: run with --help for the options" >&2
    exit 1
  fi
  if [[ "${!__po_var-}" =~ ^-?[0-9]+$ ]] && ! [[ "$__po_value" =~ ^-?[0-9]+$ ]]; then
    echo "$0: option $__po_name takes an integer, got '$__po_value'" >&2
    exit 1
  fi
  printf -v "$__po_var" '%s' "$__po_value"
done
set -- "${__po_args[@]+"${__po_args[@]}"}"
unset __po_name __po_value __po_var __po_args
