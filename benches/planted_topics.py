"""The topics `verbatim simulate` plants, read from src/simulate.rs, and which one a segment was
written for. Shared by the theme bench scripts; standard library only."""
import re


def load(path="src/simulate.rs"):
    """{topic name: [its fixed sentences, lower-cased]}."""
    src = open(path).read()
    return {m.group(1): [s.lower() for s in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))]
            for m in re.finditer(r'name: "([^"]+)".*?sentences: &\[(.*?)\]', src, re.S)}


def planted(topics, text):
    """The topic whose sentence `text` ends with (a segment may carry a lead-in), else None."""
    t = text.strip().lower()
    return next((k for k, ss in topics.items() if any(t.endswith(s) for s in ss)), None)
