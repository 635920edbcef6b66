"""The README's code example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "DistillationLoss" in b)
    scope = {}
    exec(compile(example, "README.md", "exec"), scope)
    assert scope["loss"].item() > 0 and scope["x"].shape == (64, 1040)
