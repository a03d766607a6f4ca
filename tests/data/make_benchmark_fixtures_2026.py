"""Writes tiny fixtures for the 2026 search suite and the Table 2 sets under
tests/fixtures/benchmarks/ (committed; rerun to regenerate), each in its released layout, with
bad rows and missing images.

    .venv/bin/python tests/data/make_benchmark_fixtures_2026.py
"""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from make_benchmark_fixtures import ROOT, jsonl, png, write

from deepmmsearch.data.benchmarks.search2026 import encrypt


def _parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def mmsearch() -> None:
    img = {"bytes": png((120, 30, 30)), "path": None}
    shot = {"bytes": png((30, 120, 30)), "path": None}
    base = {"area": "news", "subfield": "sports", "timestamp": "2024-08", "gt_requery": "q"}
    _parquet([
        {**base, "sample_id": "news_0", "query": "Who won the race shown?", "query_image": img,
         "image_search_result": shot, "gt_answer": "Noah Lyles", "alternative_gt_answers": ["Lyles"]},
        {**base, "sample_id": "news_1", "query": "When is the next launch of this rocket?",
         "query_image": None, "image_search_result": None, "gt_answer": "March 2025",
         "alternative_gt_answers": []},
        {**base, "sample_id": "news_2", "query": "", "query_image": img, "image_search_result": shot,
         "gt_answer": "x", "alternative_gt_answers": []},
        {**base, "sample_id": "news_3", "query": "Which team is this?",
         "query_image": {"bytes": b"not an image", "path": None}, "image_search_result": None,
         "gt_answer": "Ajax", "alternative_gt_answers": []},
    ], ROOT / "mmsearch" / "end2end.parquet")


def livevqa() -> None:
    d = ROOT / "livevqa" / "News"
    write(d / "News_imgs" / "bbc_aa.jpg", png((10, 20, 30), "JPEG"))

    def qa(q: str, gts: list[str], letter: str, options: list[str], img: str) -> dict:
        return {"question": q, "question_type": "person", "options": options, "Ground_Truth": letter,
                "Ground_Truth_List": gts, "img_path": img, "img_url": "https://example.org/x.jpg"}

    rows = [
        {"id": "0_1", "img_path": "bbc_aa.jpg",
         "level1_qa": qa("Who is shown?", ["Dave Smith", "Mr Smith"], "A", ["A. Dave Smith", "B. Bob"], "bbc_aa.jpg"),
         "level2_qa": qa("Which university did he work with in 2021?", ["University of Bristol"], "B",
                         ["A. WHO", "B. University of Bristol"], "bbc_aa.jpg"),
         "source": "BBC Health", "time": "2025-04-29"},
        {"id": "0_2", "img_path": "missing.jpg",
         "level1_qa": qa("What event is this?", ["NAB Show"], "A", ["A. NAB Show", "B. CES"], "missing.jpg"),
         "source": "Variety", "time": "2025-04-14"},
        {"img_path": "bbc_aa.jpg", "source": "no id"},
    ]
    write(d / "benchmark.json", json.dumps(rows))


def browsecomp_vl() -> None:
    d = ROOT / "browsecomp_vl"
    write(d / "images" / "level1_1.jpg", png((40, 40, 40), "JPEG"))
    write(d / "images" / "level1_2.jpg", png((41, 41, 41), "JPEG"))
    url = "https://mitalinlp.oss-cn-hangzhou.aliyuncs.com/browsecomp_vl/level1/level1_{}.jpg"
    write(d / "bc_vl_level1.jsonl", jsonl([
        {"question": "Which country produced the film on this poster?", "image_path": url.format(1),
         "answers": ["United States"], "domain": "TV"},
        {"question": "What year did this company change its structure?", "image_path": url.format(2),
         "answers": [2014], "domain": "Other"},
        {"question": "Who designed this?", "image_path": url.format(3), "answers": ["Nobody"], "domain": "Art"},
        {"image_path": url.format(4), "answers": ["x"]},
        "{broken",
    ]))


def mmsearch_plus() -> None:
    c = "MMSearch-Plus"
    img = {"bytes": png((60, 10, 90)), "path": None}
    _parquet([
        {"question": encrypt("Which paper introduced the model in this figure?", c),
         "answer": [encrypt("Attention Is All You Need", c), encrypt("Transformer paper", c)],
         "num_images": 2, "img_1": img, "img_2": {"bytes": png((1, 1, 1)), "path": None},
         "category": "academic", "difficulty": "hard", "subtask": "paper"},
        {"question": "Where was this photo taken?", "answer": ["Lisbon"], "num_images": 1,
         "img_1": img, "img_2": None, "category": "geo", "difficulty": "easy", "subtask": "place"},
        {"question": encrypt("What is this?", c), "answer": ["bm90IHZhbGlk!!"], "num_images": 1,
         "img_1": img, "img_2": None, "category": "x", "difficulty": "easy", "subtask": "x"},
        {"question": encrypt("Who is this?", c), "answer": [encrypt("Ada", c)], "num_images": 1,
         "img_1": None, "img_2": None, "category": "people", "difficulty": "easy", "subtask": "x"},
    ], ROOT / "mmsearch_plus" / "test.parquet")


def mmbench() -> None:
    b64 = base64.b64encode(png((200, 200, 0))).decode()
    cols = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
            "l2-category", "comment", "split"]
    rows = [
        [0, "What colour is the square?", "", "red", "yellow", "blue", "green", "B", "attribute", b64,
         "x", "perception", "", "dev"],
        [1, "Which shape is shown?", "Look closely.", "circle", "square", "", "", "B", "shape", "0",
         "x", "perception", "", "dev"],  # image shared with index 0, two options only
        [2, "Broken answer letter?", "", "a", "b", "c", "d", "F", "x", b64, "x", "x", "", "dev"],
        [3, "No image?", "", "a", "b", "c", "d", "A", "x", "", "x", "x", "", "dev"],
        [1000001, "Which shape is shown?", "Look closely.", "square", "circle", "", "", "A", "shape", "0",
         "x", "perception", "", "dev"],  # the file's own rotation of index 1
    ]
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t")
    w.writerow(cols)
    w.writerows(rows)
    write(ROOT / "mmbench" / "MMBench_DEV_EN.tsv", buf.getvalue())


def ai2d() -> None:
    img = {"bytes": png((5, 100, 5)), "path": None}
    _parquet([
        {"question": "Which stage comes after the egg?", "options": ["larva", "adult", "pupa", "egg"],
         "answer": "0", "image": img},
        {"question": "What eats the grass?", "options": ["fox", "rabbit"], "answer": "1", "image": img},
        {"question": "Bad answer index", "options": ["a", "b"], "answer": "7", "image": img},
    ], ROOT / "ai2d" / "test.parquet")


def docvqa() -> None:
    d = ROOT / "docvqa"
    write(d / "documents" / "doc1.png", png((250, 250, 250)))
    write(d / "val_v1.0.json", json.dumps({"dataset_name": "docvqa", "dataset_split": "val", "data": [
        {"questionId": 1, "question": "What is the date on the letter?", "image": "documents/doc1.png",
         "docId": 11, "answers": ["March 5, 1998", "5 March 1998"], "data_split": "val"},
        {"questionId": 2, "question": "Who signed it?", "image": "documents/doc1.png", "docId": 11,
         "answers": ["J. Smith"], "data_split": "val"},
        {"questionId": 3, "question": "Missing page?", "image": "documents/nope.png", "docId": 12,
         "answers": ["x"], "data_split": "val"},
        {"questionId": 4, "image": "documents/doc1.png", "answers": ["y"]},
    ]}))


def ocrbench() -> None:
    d = ROOT / "ocrbench"
    write(d / "images" / "text1.jpg", png((255, 255, 255), "JPEG"))
    write(d / "OCRBench.json", json.dumps([
        {"dataset_name": "IIIT5K", "id": 0, "image_path": "images/text1.jpg",
         "question": "what is written in the image?", "answers": ["CHINA"], "type": "Regular Text Recognition"},
        {"dataset_name": "HME100k", "id": 1, "image_path": "images/text1.jpg",
         "question": "Please write out the expression of the formula in the image using LaTeX format.",
         "answers": "x ^ { 2 } + 1", "type": "Handwritten Mathematical Expression Recognition"},
        {"dataset_name": "docVQA", "id": 2, "image_path": "images/gone.jpg", "question": "What is the total?",
         "answers": ["$12"], "type": "Doc-oriented VQA"},
        {"dataset_name": "x", "id": 3, "image_path": "images/text1.jpg", "answers": ["no question"]},
    ]))


def mathvista() -> None:
    d = ROOT / "mathvista"
    write(d / "images" / "1.jpg", png((9, 9, 9), "JPEG"))
    meta = {"split": "testmini", "language": "english", "source": "fixture"}
    write(d / "testmini.json", json.dumps({
        "1": {"question": "What is the length of the bar?", "image": "images/1.jpg", "choices": None,
              "unit": "cm", "precision": 1, "answer": "1.2", "question_type": "free_form",
              "answer_type": "float", "query": "Hint: answer with one decimal.\nQuestion: What is the length of the bar?",
              "pid": "1", "metadata": meta},
        "2": {"question": "Which shape is largest?", "image": "images/1.jpg",
              "choices": ["circle", "square", "triangle"], "unit": None, "precision": None,
              "answer": "square", "question_type": "multi_choice", "answer_type": "text",
              "query": "Which shape is largest?\nChoices:\n(A) circle\n(B) square\n(C) triangle",
              "pid": "2", "metadata": meta},
        "3": {"question": "How many dots?", "image": "images/3.jpg", "choices": None, "unit": None,
              "precision": None, "answer": "7", "question_type": "free_form", "answer_type": "integer",
              "query": "How many dots?", "pid": "3", "metadata": meta},
        "4": "not an object",
    }))


def mmvet() -> None:
    d = ROOT / "mmvet"
    write(d / "images" / "v1_0.png", png((3, 3, 3)))
    write(d / "mm-vet.json", json.dumps({
        "v1_0": {"imagename": "v1_0.png", "capability": ["ocr", "math"], "question": "What is x in the equation?",
                 "answer": "-1 <AND> -5"},
        "v1_1": {"imagename": "v1_1.png", "capability": ["rec"], "question": "What is this?", "answer": "cat"},
        "v1_2": {"imagename": "v1_0.png", "capability": ["rec"], "answer": "no question"},
    }))


def main() -> None:
    for make in (mmsearch, livevqa, browsecomp_vl, mmsearch_plus, mmbench, ai2d, docvqa, ocrbench,
                 mathvista, mmvet):
        make()
    print(f"wrote 2026 / Table 2 fixtures under {ROOT}")


if __name__ == "__main__":
    main()
