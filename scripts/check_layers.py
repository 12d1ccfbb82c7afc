#!/usr/bin/env python3
"""Fails when a library includes a header of a library above it (docs/architecture.md).

Each folder is one CMake library; a file may include headers of its own library and of the
libraries below it, nothing else. The coordinator, the tokenizer and common never include a
CUDA header. Usage: scripts/check_layers.py [ROOT]   (default: the repository root)
"""
import pathlib
import re
import sys

# Library (folder) -> the libraries its files may include, itself included. Order: a folder's
# longest matching prefix names its library.
BELOW = {
    "common": {"common"},
    "kernels/cpu": {"common", "kernels/cpu", "kernels/top"},
    "kernels/cuda": {"common", "kernels/cuda", "kernels/top"},
    "kernels/top": {"common", "kernels/top"},  # headers directly in kernels/, e.g. rope_params.h
    "comm": {"common", "comm"},
    "models": {"common", "comm", "kernels/cpu", "kernels/cuda", "kernels/top", "models"},
    "tokenizer": {"common", "tokenizer"},
    "proto": {"proto"},
}
BELOW["shard/runner"] = BELOW["models"] | {"shard/runner"}
BELOW["shard/engine"] = BELOW["shard/runner"] | {"shard/engine"}
BELOW["shard/serve"] = BELOW["shard/engine"] | {"shard/serve", "proto"}
BELOW["shard/cli"] = BELOW["shard/engine"] | {"shard/cli", "tokenizer"}
BELOW["shard/top"] = (BELOW["shard/serve"] | BELOW["shard/cli"]) | {"shard/top"}  # shard_main
BELOW["coordinator"] = {"common", "tokenizer", "proto", "coordinator"}

# Libraries that must build and run without CUDA, whatever the build.
NO_CUDA = {"common", "tokenizer", "coordinator", "proto", "kernels/cpu"}
CUDA_HEADER = re.compile(r"#\s*include\s*<(cuda|cublas|nccl|curand|cub/|thrust/)")
PROJECT_INCLUDE = re.compile(r'#\s*include\s*"([^"]+)"')
SOURCES = ("*.h", "*.cpp", "*.cu", "*.cuh")
CHECKED_TOP = ("common", "kernels", "comm", "models", "tokenizer", "shard", "coordinator")


def library_of(relative: str) -> str | None:
    """The library a path (a file, or an included header) belongs to, or None (not ours)."""
    parts = relative.split("/")
    if parts[0] == "shardwise" and len(parts) > 1 and parts[1] == "v1":
        return "proto"  # generated: shardwise/v1/*.pb.h
    if parts[0] in ("kernels", "shard"):
        if len(parts) > 2:
            return f"{parts[0]}/{parts[1]}"
        return f"{parts[0]}/top"
    if parts[0] in BELOW:
        return parts[0]
    return None


def check(root: pathlib.Path) -> list[str]:
    problems = []
    for top in CHECKED_TOP:
        for pattern in SOURCES:
            for path in sorted((root / top).rglob(pattern)):
                relative = path.relative_to(root).as_posix()
                library = library_of(relative)
                allowed = BELOW[library]
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    included = PROJECT_INCLUDE.match(line.strip())
                    if included:
                        target = library_of(included.group(1))
                        if target is not None and target not in allowed:
                            problems.append(f"{relative}:{number}: {library} includes "
                                            f"{included.group(1)}, but may not depend on "
                                            f"{target} (it may use: "
                                            f"{', '.join(sorted(allowed))})")
                    if library in NO_CUDA and CUDA_HEADER.match(line.strip()):
                        problems.append(f"{relative}:{number}: {library} includes a CUDA "
                                        f"header: {line.strip()}")
    return problems


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parent.parent)
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the library order "
              "(docs/architecture.md)", file=sys.stderr)
        return 1
    print("check_layers: every include points down the library order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
