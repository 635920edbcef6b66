#!/usr/bin/env bash
# Stage: tune the acoustic scale on dev, apply to test. One call of `asrdistill score`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

dev_dir=exp/tri/decode_dev
test_dir=exp/tri/decode_test
members=          # comma-separated member indices: the directories contain {member}
help_message="Usage: $0 [options]  (WER on test at the acoustic scale best on dev)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill score --dev-dir "$dev_dir" --test-dir "$test_dir" ${members:+--members "$members"}
