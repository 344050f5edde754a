import json

from vlmkit.arena.simulate import simulate_battles
from vlmkit.cli import main


def write_battles(path, battles):
    path.write_text("".join(json.dumps(vars(b)) + "\n" for b in battles))


def test_ratings_json_gives_one_row_per_model_best_first(tmp_path, capsys):
    path = tmp_path / "battles.jsonl"
    write_battles(path, simulate_battles({"big": 1200.0, "mid": 1000.0, "small": 800.0}, 600, tie_rate=0.1))
    assert main(["arena", "ratings", str(path), "--json", "--rounds", "50"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in rows] == ["big", "mid", "small"]
    for row in rows:
        assert set(row) == {"model", "rating", "lower", "upper", "elo", "battles"}
        assert row["lower"] <= row["rating"] <= row["upper"]
    assert sum(row["battles"] for row in rows) == 2 * 600
    assert main(["arena", "ratings", str(path), "--rounds", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "model", "rating", "95%", "CI", "elo", "battles"]
    assert lines[1].split()[:2] == ["1", "big"]


def test_leaderboard_markdown(tmp_path, capsys):
    path = tmp_path / "battles.jsonl"
    write_battles(path, simulate_battles({"a|pipe": 1100.0, "b": 900.0}, 200))
    assert main(["arena", "leaderboard", str(path), "--format", "md", "--rounds", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| rank | model | rating | 95% CI | elo | battles |"
    assert lines[1] == "|---:|:---|---:|---:|---:|---:|"
    assert lines[2].startswith("| 1 | a\\|pipe | ") and lines[2].endswith(" | 200 |")
    assert len(lines) == 4


def test_a_bad_row_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "battles.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "winner": "model_c"}\n')
    assert main(["arena", "ratings", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "battles.jsonl line 1: 'winner' must be one of" in err[0]
    assert main(["arena", "ratings", str(path), "--rounds", "0"]) == 2
    assert "--rounds: expected at least 1" in capsys.readouterr().err


def test_ratings_read_the_arena_database(tmp_path, capsys):
    from vlmkit.arena.votes import VoteStore

    with VoteStore.open(tmp_path / "votes.db") as store:
        for i, battle in enumerate(simulate_battles({"p": 1100.0, "q": 900.0}, 100, tie_rate=0.2)):
            store.record(str(i), battle.model_a, battle.model_b, battle.winner)
    assert main(["arena", "ratings", str(tmp_path / "votes.db"), "--json", "--rounds", "20"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in rows] == ["p", "q"] and rows[0]["battles"] == 100


def test_arena_loads_models_through_vlmkit_and_serves_them_by_directory_name(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from testkit import tiny_model
    from tiny_vlm import tiny_vlm
    from vlmkit.checkpoints import save_pretrained
    from vlmkit.cli import build_parser
    from vlmkit.cli.arena import build_arena

    for name in ("left", "right"):
        save_pretrained(tiny_vlm(), tmp_path / name)
    models = f"{tmp_path / 'left'},{tmp_path / 'right'}"
    args = build_parser().parse_args(
        ["arena", "--models", models, "--votes", str(tmp_path / "v.db"), "--device", "cpu"]
    )
    assert args.host == "127.0.0.1"
    with TestClient(build_arena(args)) as client:
        with client.stream("POST", "/arena/battle", json={"prompt": "describe the image."}) as response:
            lines = list(response.iter_lines())
        battle = json.loads(lines[0][len("data: ") :])["battle"]
        result = client.post("/arena/vote", json={"battle": battle, "winner": "model_b"}).json()
    assert {result["model_a"], result["model_b"]} == {"left", "right"}

    save_pretrained(tiny_model(), tmp_path / "clip")
    for bad, message in [
        (str(tmp_path / "left"), "at least two vision-language models"),
        (f"{tmp_path / 'left'},{tmp_path / 'left'}", "names left more than once"),
        (f"{tmp_path / 'left'},{tmp_path / 'clip'}", "arena needs a vision-language model"),
    ]:
        assert main(["arena", "--models", bad, "--votes", str(tmp_path / "v.db")]) == 2
        assert message in capsys.readouterr().err
