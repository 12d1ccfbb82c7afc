#!/usr/bin/env bash
# The tree keeps its shape (run by scripts/test.sh before it builds): every C++ file in git is
# clang-formatted with the repository's .clang-format, and every #include points down the
# library order (scripts/check_layers.py). CUDA sources (.cu, .cuh) are left out: Debian's
# clang-format 14 reads some of their template expressions as declarations and mangles them.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files -- '*.h' '*.cpp')
unformatted=()
for file in "${sources[@]}"; do
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  echo "check-tree: not clang-formatted (run clang-format -i on them):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  exit 1
fi
echo "check-tree: ${#sources[@]} C++ files clang-formatted"
python3 scripts/check_layers.py
