"""Where the time goes, from a py-spy ``record --format raw`` file.

``python3 bench/pyspy_summary.py profile.txt [--top 25]`` prints the
functions with the most samples on top of the stack (self) and in the stack
(inclusive), as shares of all samples (py-spy counts on-CPU samples only
unless ``--idle`` was given).  bench/ingest.py calls :func:`summarize`.
"""

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def _short(frame):
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("/odoo/addons/", "/site-packages/", "/odoo/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    path = re.sub(r"^.*?open_workshop_mqtt/", "owm/", path)
    path = re.sub(r"^.*?/main/", "owm/", path)
    return f"{match['func']} ({path})"


def parse(path):
    """[(frames root->leaf, count)] from a py-spy raw (collapsed) file."""
    stacks = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            frames = [f for f in stack.split(";") if f]
            if frames and frames[0].startswith(("process ", "thread ")):
                frames = [
                    f for f in frames if not f.startswith(("process ", "thread "))
                ]
            stacks.append(([_short(f) for f in frames], n))
    return stacks


def summarize(path, top=25, only=None):
    """{'total': samples, 'self': [(func, share)], 'inclusive': [(func, share)]}.

    ``only``: keep the stacks with a frame starting with it (one thread's
    entry point, e.g. ``DatabaseRunner.run``)."""
    stacks = parse(path)
    if only:
        stacks = [(f, n) for f, n in stacks if any(x.startswith(only) for x in f)]
    total = sum(n for _, n in stacks) or 1
    own = Counter()
    incl = Counter()
    for frames, n in stacks:
        if frames:
            own[frames[-1]] += n
        for func in set(frames):
            incl[func] += n
    return {
        "total": total,
        "self": [(f, n / total) for f, n in own.most_common(top)],
        "inclusive": [(f, n / total) for f, n in incl.most_common(top)],
    }


def render(summary, title="py-spy samples"):
    lines = [f"{title}: {summary['total']}", "  self time:"]
    for func, share in summary["self"]:
        lines.append(f"    {share * 100:5.1f}%  {func}")
    lines.append("  inclusive:")
    for func, share in summary["inclusive"]:
        lines.append(f"    {share * 100:5.1f}%  {func}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", help="stacks through this function only")
    args = parser.parse_args()
    print(render(summarize(args.path, args.top, args.only)))


if __name__ == "__main__":
    main()
