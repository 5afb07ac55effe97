from tests.test_gated_base import *  # noqa
def test_dbg(tiny_repo, env, run_cli):
    gate_base(env)
    code, out, err = run_cli("doctor", "--repo", tiny_repo)
    print(out, err)
    assert 0
