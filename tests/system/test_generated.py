"""generated/ is regenerated from openapi/, never edited: fail when it is stale."""
import subprocess

from support import ROOT


def test_generated_models_match_the_spec():
    result = subprocess.run([str(ROOT / "scripts/generate"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, f"generated/ is stale; run scripts/generate\n{result.stdout}{result.stderr}"
