"""Summarise a py-spy raw (collapsed) profile: share of samples per function, self and total.

python bench/collapse.py bench/profiles/sqlite-A.txt [--grep deliveries]
"""

from __future__ import annotations

import argparse
import collections
import re

SHORTEN = re.compile(r" \(.*?/(site-packages|lib/python3\.\d+)/")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", default="")
    args = parser.parse_args()
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    with open(args.path) as fh:
        lines = fh.readlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        n = int(count)
        frames = [SHORTEN.sub(" (", f) for f in stack.split(";")]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title}")
        shown = 0
        for frame, n in counter.most_common():
            if args.grep and args.grep not in frame:
                continue
            print(f"{n / total:6.1%}  {frame[:150]}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
