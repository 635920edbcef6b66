#!/usr/bin/env bash
# Stage: print utterances, hours and speakers per split. One call of `asrdistill summary`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

manifest_dir=data/fbank
prefix=fsdd
help_message="Usage: $0 [options]  (summary of a corpus's manifests)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill summary "$manifest_dir" --prefix "$prefix"
