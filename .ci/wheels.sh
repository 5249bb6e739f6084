#!/usr/bin/env bash
# Build every distribution's wheel with `uv build`, install combinations of them into
# fresh virtual environments (the metricache distributions from these wheels alone,
# their third-party dependencies from the package index) and run .ci/wheel_smoke.py
# in each: record, sync, read the view, render, serve one scrape.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

uv build --all-packages --wheel --quiet -o "$work/dist"

wheel() {  # the wheel file of a distribution
    local found=("$work/dist/${1//-/_}"-*-py3-none-any.whl)
    [[ -f "${found[0]}" ]] || { echo "ci: no wheel for $1" >&2; exit 1; }
    echo "${found[0]}"
}

smoke() {  # smoke STORE FORMAT DISTRIBUTION... (the core's dependencies come along)
    local store=$1 format=$2
    shift 2
    local venv="$work/venv-$store-$format" wheels=() expect="metricache,metricache-memory,metricache-prometheus"
    for name in "$@"; do
        wheels+=("$(wheel "$name")")
        [[ ",$expect," == *",$name,"* ]] || expect="$expect,$name"
    done
    echo "ci: wheels: $* ($store, $format)"
    (cd "$work" && uv venv --quiet "$venv")
    # --find-links: the core's own dependencies (memory, prometheus) resolve to the
    # wheels just built, never to an index.
    uv pip install --quiet --python "$venv/bin/python" --find-links "$work/dist" "${wheels[@]}"
    (cd "$work" && "$venv/bin/python" "$root/.ci/wheel_smoke.py" \
        --store "$store" --format "$format" --expect "$expect")
}

smoke memory prometheus metricache
smoke memory openmetrics metricache metricache-memory metricache-prometheus
smoke redis json metricache metricache-redis metricache-json
smoke memcached csv metricache metricache-memcached metricache-csv metricache-conformance
