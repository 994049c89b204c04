import json


def test_fresh_apply_then_verify(db, ops):
    proc = ops("migrate", "apply", check=True)
    assert "built" in proc.stderr
    proc = ops("migrate", "verify", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert report["ok"] and report["checked"] == 16
