"""A build in its own process, for tests that signal or kill a real process mid-build.

``python tests/build_worker.py OUT CORPUS PROGRESS --seeds A --seeds B [--delay S] [--hops N]``
builds the test corpus of test_pipeline.py with its fake generator, sleeping ``S`` seconds in each
model call and writing the number of finished calls to PROGRESS after each one, so a test can kill
the build at a known point. Ctrl-C and SIGTERM end it with exit code 130, as the CLI does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import FakeGenerator
from test_pipeline import OUTPUTS, settings

from kgrag.generator.base import Generation
from kgrag.pipeline import Pipeline


class SlowGenerator(FakeGenerator):
    def __init__(self, progress: Path, delay: float) -> None:
        super().__init__(OUTPUTS)
        self.progress = progress
        self.delay = delay

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        time.sleep(self.delay)
        result = super().generate(messages, json_schema, max_tokens)
        self.progress.write_text(str(self.calls), encoding="utf-8")
        return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("progress", type=Path)
    parser.add_argument("--seeds", action="append", default=[])
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--hops", type=int, default=1)
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()
    backend = SlowGenerator(args.progress, args.delay)
    pipeline = Pipeline(settings(hops=args.hops, top_k=args.top_k), args.out, backend=backend, show_progress=False)
    try:
        pipeline.run([args.corpus], args.seeds)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
