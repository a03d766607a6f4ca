"""Writes the tiny benchmark fixtures under tests/fixtures/benchmarks/ (committed; rerun to
regenerate): a few rows per benchmark in its official layout, malformed rows included.

    .venv/bin/python tests/data/make_benchmark_fixtures.py
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def png(color: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 10), color).save(buf, format=fmt)
    return buf.getvalue()


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


def jsonl(rows: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def infoseek() -> None:
    d = ROOT / "infoseek"
    write(d / "images" / "oven_0001.jpg", png((200, 10, 10), "JPEG"))
    write(d / "images" / "oven_0002.jpg", png((10, 200, 10), "JPEG"))
    write(d / "images" / "shard1" / "oven_0003.jpg", png((10, 10, 200), "JPEG"))
    write(d / "images" / "oven_0005.jpg", b"this is not an image")
    write(d / "images" / "shard02" / "08" / "oven_0008.jpg", png((80, 80, 80), "JPEG"))  # no map entry
    write(d / "ovenid2impath.csv", "image_id,image_path\noven_0003,shard1/oven_0003.jpg\n")
    rows = [
        {"data_id": "infoseek_val_00001", "image_id": "oven_0001", "question": "Which river flows through this city?",
         "answer": ["Seine"], "answer_eval": ["Seine", "Seine River"], "data_split": "val_unseen_question"},
        {"data_id": "infoseek_val_00002", "image_id": "oven_0002", "question": "How tall is this tower in metres?",
         "answer": ["330"], "answer_eval": [{"wikidata": 330.0, "range": [297.0, 363.0]}],
         "data_split": "val_unseen_entity"},
        {"data_id": "infoseek_val_00003", "image_id": "oven_0003", "question": "In which year was this bridge opened?",
         "answer": ["1937"], "answer_eval": ["1937"], "data_split": "val_unseen_entity"},
        '{"data_id": "infoseek_val_00004", "image_id": "oven_0001", "question": "broken',
        {"data_id": "infoseek_val_00005", "image_id": "oven_0005", "question": "Who built this?",
         "answer": ["X"], "answer_eval": ["X"], "data_split": "val_unseen_question"},
        {"data_id": "infoseek_val_00006", "image_id": "oven_9999", "question": "Where is this?",
         "answer": ["Y"], "answer_eval": ["Y"], "data_split": "val_unseen_question"},
        {"data_id": "infoseek_val_00007", "image_id": "oven_0002", "question": 42, "answer": ["Z"]},
        {"data_id": "infoseek_val_00001", "image_id": "oven_0001", "question": "Which river, again?",
         "answer": ["Seine"], "answer_eval": ["Seine"], "data_split": "val_unseen_question"},
        {"data_id": "infoseek_val_00008", "image_id": "oven_0008", "question": "How many floors does it have?",
         "answer": ["40"], "answer_eval": [{"wikidata": 40, "range": [36, 44]}, {"wikidata": 400, "range": [360, 440]}],
         "data_split": "val_unseen_question"},
        {"data_id": "infoseek_val_00009", "image_id": "oven_0001", "question": "What is the river called?",
         "answer": ["Seine"], "answer_eval": ["Seine", "Seine", "Seine River"], "data_split": "val_unseen_entity"},
    ]
    write(d / "infoseek_val.jsonl", jsonl(rows))
    qtypes = [{"data_id": "infoseek_val_00001", "question_type": "String"},
              {"data_id": "infoseek_val_00002", "question_type": "Numerical"},
              {"data_id": "infoseek_val_00003", "question_type": "Time"},
              {"data_id": "infoseek_val_00005"},
              {"data_id": "infoseek_val_00008", "question_type": "Numerical"},
              {"data_id": "infoseek_val_00009", "question_type": "String"}]
    write(d / "infoseek_val_qtype.jsonl", jsonl(qtypes))


def evqa() -> None:
    d = ROOT / "evqa"
    write(d / "landmarks" / "a" / "b" / "c" / "abc123.jpg", png((1, 2, 3), "JPEG"))
    write(d / "landmarks" / "d" / "e" / "f" / "def456.jpg", png((4, 5, 6), "JPEG"))
    write(d / "inat" / "val" / "bird1.jpg", png((7, 8, 9), "JPEG"))
    write(d / "inat_val.json", json.dumps({"images": [{"id": 5001, "file_name": "inat/val/bird1.jpg"}]}))
    cols = ["question", "answer", "dataset_image_ids", "dataset_name", "dataset_category_id",
            "question_type", "wikipedia_url", "wikipedia_title", "evidence", "evidence_section_id",
            "evidence_section_title", "encyclopedic_vqa_split", "question_original",
            "wikipedia_url_used_in_train"]
    rows = [
        ["When was this building completed?", "1889|in 1889", "abc123|def456", "landmarks", "11",
         "templated", "https://en.wikipedia.org/wiki/A", "A", "It was completed in 1889.", "0", "A",
         "test", "When was A completed?", "False"],
        ["What does this bird eat?", "insects && seeds", "5001", "inaturalist", "22", "multi_answer",
         "https://en.wikipedia.org/wiki/B", "B", "", "1", "Diet", "test", "What does B eat?", "True"],
        ["Who designed the city where this is?", "Someone", "def456", "landmarks", "33", "2_hop",
         "https://en.wikipedia.org/wiki/C|https://en.wikipedia.org/wiki/D", "C", "", "0|1", "x|y",
         "test", "", "False"],
        ["Where is this?", "Nowhere", "zzz999", "landmarks", "44", "automatic", "u", "t", "", "0",
         "s", "test", "", "False"],
        ["Which genus is this plant?", "Quercus", "2701234", "inaturalist", "55", "templated", "u", "t",
         "", "0", "s", "test", "", "False"],
    ]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows[:2]:
        w.writerow(r)
    buf.write("a row,with too few columns\n")
    for r in rows[2:]:
        w.writerow(r)
    write(d / "test.csv", buf.getvalue())


def simplevqa() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    b64 = base64.b64encode(png((50, 60, 70))).decode()
    rows = [
        {"data_id": 0, "image": b64, "image_description": "a logo", "language": "EN",
         "question": "Which company uses this logo?", "answer": "Acme", "original_category": "brand",
         "source": "web", "atomic_question": "", "atomic_fact": "", "vqa_category": "Recognition"},
        {"data_id": 1, "image": b64, "image_description": "", "language": "CN",
         "question": "这是什么?", "answer": "标志", "original_category": "brand", "source": "web",
         "atomic_question": "", "atomic_fact": "", "vqa_category": "Recognition"},
        {"data_id": 2, "image": "!!!not base64 image!!!", "image_description": "", "language": "EN",
         "question": "What is shown?", "answer": "A cat", "original_category": "animal", "source": "web",
         "atomic_question": "", "atomic_fact": "", "vqa_category": "Recognition"},
        {"data_id": 3, "image": b64, "image_description": "", "language": "EN",
         "question": "Which year was it founded?", "answer": "1901", "original_category": "brand",
         "source": "web", "atomic_question": "", "atomic_fact": "", "vqa_category": "Knowledge"},
        {"data_id": 4, "image": b64, "image_description": "", "language": "EN",
         "question": None, "answer": "x", "original_category": "", "source": "",
         "atomic_question": "", "atomic_fact": "", "vqa_category": ""},
    ]
    (ROOT / "simplevqa").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), ROOT / "simplevqa" / "test.parquet")


def dynvqa() -> None:
    d = ROOT / "dynvqa" / "dataset"
    write(ROOT / "dynvqa" / "images" / "pic1.jpg", png((90, 90, 90), "JPEG"))
    write(ROOT / "dynvqa" / "images" / "en3.png", png((91, 91, 91)))
    old = [
        {"image_url": "https://oss.example/img/pic1.jpg", "question": "Who is the CEO of this company?",
         "question_id": "en1", "answer": ["Alice"], "gloden_query": "company CEO"},
        {"image_url": "https://oss.example/img/pic2.jpg", "question": "How many stores?",
         "question_id": "en2", "answer": [1200], "gloden_query": "stores"},
    ]
    new = [
        {"image_url": "https://oss.example/img/pic1.jpg", "question": "Who is the CEO of this company?",
         "question_id": "en1", "answer": ["Bob", "Robert"], "golden_query": "company CEO"},
        {"image_url": "https://oss.example/img/pic2.jpg", "question": "How many stores?",
         "question_id": "en2", "answer": [1300], "golden_query": "stores"},
        {"image_url": "https://oss.example/img/x.jpg", "question": "What is the team's home city?",
         "question_id": "en3", "answer": ["北京"], "golden_query": "home city"},
        "not json at all",
        {"image_url": "https://oss.example/img/x.jpg", "question": "", "question_id": "en5", "answer": ["?"]},
    ]
    write(d / "DynVQA_en" / "DynVQA_en.202412.jsonl", jsonl(old))
    write(d / "DynVQA_en" / "DynVQA_en.202502.jsonl", jsonl(new))
    write(d / "DynVQA_zh" / "DynVQA_zh.202412.jsonl", jsonl([
        {"image_url": "https://oss.example/img/pic1.jpg", "question": "这家公司的CEO是谁?",
         "question_id": "zh1", "answer": ["爱丽丝"], "gloden_query": "CEO"}]))


def okvqa() -> None:
    d = ROOT / "okvqa"
    for i, c in ((101, (1, 1, 1)), (102, (2, 2, 2)), (103, (3, 3, 3))):
        write(d / "images" / f"COCO_val2014_{i:012d}.jpg", png(c, "JPEG"))

    def answers(words: list[str]) -> list[dict]:
        return [{"answer": w, "raw_answer": w, "answer_confidence": "yes", "answer_id": k + 1}
                for k, w in enumerate(words)]

    questions = {"data_subtype": "val2014", "task_type": "OpenEnded", "questions": [
        {"image_id": 101, "question": "What sport is being played?", "question_id": 1010},
        {"image_id": 102, "question": "What is this animal called?", "question_id": 1020},
        {"image_id": 103, "question": "What time of day is it?", "question_id": 1030},
        {"image_id": 104, "question": "What is missing here?", "question_id": 1040},
        {"image_id": 101, "question_id": 1050},
        {"image_id": 101, "question": "Unannotated?", "question_id": 1060},
    ]}
    anns = {"annotations": [
        {"question_id": 1010, "image_id": 101, "question_type": "eight", "answer_type": "other",
         "answers": answers(["tennis"] * 6 + ["tenis", "badminton", "tennis", "sport"])},
        {"question_id": 1020, "image_id": 102, "question_type": "two", "answer_type": "other",
         "answers": answers(["dog", "dog", "puppy", "dog", "hound", "dog", "dogs", "dog", "dog", "canine"])},
        {"question_id": 1030, "image_id": 103, "question_type": "one", "answer_type": "other",
         "answers": answers(["night", "evening"] * 5)},
        {"question_id": 1040, "image_id": 104, "question_type": "one", "answer_type": "other",
         "answers": answers(["nothing"] * 10)},
        {"question_id": 1050, "image_id": 101, "answers": "bad"},
    ]}
    write(d / "OpenEnded_mscoco_val2014_questions.json", json.dumps(questions))
    write(d / "mscoco_val2014_annotations.json", json.dumps(anns))


def aokvqa() -> None:
    d = ROOT / "aokvqa"
    write(d / "val2017" / f"{201:012d}.jpg", png((21, 21, 21), "JPEG"))
    write(d / "val2017" / f"{202:012d}.jpg", png((22, 22, 22), "JPEG"))
    rows = [
        {"split": "val", "image_id": 201, "question_id": "q201", "question": "What is the man holding?",
         "choices": ["umbrella", "bat", "kite", "phone"], "correct_choice_idx": 0,
         "direct_answers": ["umbrella"] * 7 + ["parasol", "umbrella", "shade"],
         "difficult_direct_answer": False, "rationales": ["It is raining."] * 3},
        {"split": "val", "image_id": 202, "question_id": "q202", "question": "Why is the road wet?",
         "choices": ["rain", "snow", "sun", "wind"], "correct_choice_idx": 0,
         "direct_answers": ["rain", "rain", "it rained", "rain", "rain", "raining", "rain", "rain", "storm", "rain"],
         "difficult_direct_answer": True, "rationales": ["Puddles."] * 3},
        {"split": "val", "image_id": 203, "question_id": "q203", "question": "No image here?",
         "choices": ["a", "b", "c", "d"], "correct_choice_idx": 1, "direct_answers": ["b"] * 10,
         "difficult_direct_answer": False, "rationales": []},
        {"split": "val", "image_id": 201, "question_id": "q204", "question": "Bad choices",
         "choices": "abcd", "correct_choice_idx": 1, "direct_answers": ["b"] * 10},
        ["not", "an", "object"],
    ]
    write(d / "aokvqa_v1p0_val.json", json.dumps(rows))


def fvqa() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def row(i: int, q: str, gt: str, aliases: list[str], category: str | None, image: bytes | None) -> dict:
        return {
            "data_id": f"fvqa_train_{i}", "data_source": "mmsearch_r1/fvqa_train",
            "prompt": [{"role": "user", "content": q}],
            "images": [{"bytes": image, "path": None}] if image is not None else [],
            "reward_model": {"ground_truth": gt, "candidate_answers": json.dumps(aliases),
                             "style": "rule"},
            "image_urls": None, "category": category,
        }

    rows = [
        row(0, "Which country is this flag from?", "France",
            ["France", "French Republic", "FR", "\U0001F1EB\U0001F1F7"], "search_free", png((0, 0, 255))),
        row(1, "Who painted this?", "Claude Monet", ["Monet"], "search_required", png((0, 255, 0), "JPEG")),
        row(2, "What is this building?", "Louvre", ["Louvre Museum"], "search_required", b"garbage bytes"),
        row(3, "When was it built?", "", [], "search_required", png((1, 2, 3))),
        row(4, "What bird is this?", "Great egret", ["Ardea alba"], None, png((9, 9, 9))),
    ]
    (ROOT / "fvqa").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), ROOT / "fvqa" / "fvqa_train.parquet")


DISTILL_CATEGORIES = {
    "animals": [("What bird is this?", "Great egret"), ("What animal is shown?", "Red fox"),
                ("Which breed is this dog?", "Beagle"), ("What insect is this?", "Monarch butterfly"),
                ("What fish is this?", "Atlantic salmon"), ("What reptile is this?", "Green iguana")],
    "landmarks and places": [("Which city is this?", "Lisbon"), ("What is this square?", "Plaza Mayor"),
                             ("Which island is this?", "Capri"), ("Which park is this?", "Yosemite"),
                             ("Which harbour is this?", "Valletta"), ("Which valley is this?", "Napa")],
    "art and culture": [("Who painted this?", "Vermeer"), ("Which film is this poster from?", "Metropolis"),
                        ("Who sculpted this?", "Rodin"), ("Which album cover is this?", "Abbey Road"),
                        ("Which opera is staged here?", "Carmen"), ("Which novel is this cover?", "Dracula")],
    "food and drink": [("What dish is this?", "Paella"), ("What cheese is this?", "Gouda"),
                       ("What fruit is this?", "Durian"), ("What bread is this?", "Baguette"),
                       ("What drink is this?", "Horchata"), ("What dessert is this?", "Tiramisu")],
}


def distill_fixture() -> None:
    """A 24-question source and a scripted teacher whose outcomes cover every filter."""
    d = ROOT.parent / "distill"
    rows, scripts = [], {}
    bad = ["invalid", "give_up", "too_many_turns", "no_answer"]
    for c, (cat, items) in enumerate(DISTILL_CATEGORIES.items()):
        for k, (question, answer) in enumerate(items):
            sid = f"d{c}{k}"
            rows.append({"id": sid, "question": question, "answers": [answer], "image": "../scene.png",
                         "category": cat, "source": "fixture"})
            reason = f"<reason>Step for {sid}.</reason>"
            if k in (0, 1):  # search-free, correct
                turns = [f"{reason}<answer>{answer}</answer>"]
            elif k in (2, 3):  # search-required, correct
                turns = [f"{reason}<text_search>{question} {sid}</text_search>",
                         f"{reason}<answer>It is {answer}.</answer>"]
            elif k == 4:  # wrong answer: the judge rejects it
                turns = [f"{reason}<answer>Something else</answer>"]
            else:
                kind = bad[c % len(bad)]
                turns = {
                    "invalid": [f"{answer}", f"{reason}<answer>{answer}</answer>"],
                    "give_up": [f"{reason}<answer>Unable to answer due to lack of relevant information</answer>"],
                    "too_many_turns": [f"{reason}<text_search>q{i}</text_search>" for i in range(12)],
                    "no_answer": [f"{reason}<answer>{answer}"] * 3,
                }[kind]
            scripts[sid] = turns
    write(d / "questions.jsonl", jsonl(rows))
    import yaml

    write(d / "teacher.yaml", yaml.safe_dump(scripts, sort_keys=True, allow_unicode=True))
    write(d / "text_hits.yaml", yaml.safe_dump({"*": [
        {"title": "Reference page", "url": "https://example.org/ref", "snippet": "Facts about the entity."}]}))


def main() -> None:
    distill_fixture()
    for make in (infoseek, evqa, simplevqa, dynvqa, okvqa, aokvqa, fvqa):
        make()
    print(f"wrote fixtures under {ROOT}")


if __name__ == "__main__":
    main()
