"""A small reader for the Prometheus text exposition format, enough for the tests: samples with
their labels, and the declared type of each family. promtool is the format's judge; this only
lets tests look values up."""

import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    def __init__(self, text: str):
        self.text = text
        self.samples = []  # (name, {label: value}, float)
        self.types = {}  # family -> counter|gauge|histogram|...
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(None, 3)
                self.types[family] = kind
            elif line and not line.startswith("#"):
                m = _SAMPLE.match(line)
                assert m, f"unparsable sample line {line!r}"
                name, labels, value = m.groups()
                pairs = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _LABEL.findall(labels or "")}
                self.samples.append((name, pairs, float(value)))

    def series(self, name, **labels):
        """[(labels, value)] of samples named `name` whose labels include `labels`."""
        want = {k: str(v) for k, v in labels.items()}
        return [(l, v) for n, l, v in self.samples if n == name and all(l.get(k) == x for k, x in want.items())]

    def value(self, name, default=None, **labels):
        """The one sample named `name` with exactly these labels (plus none other)."""
        want = {k: str(v) for k, v in labels.items()}
        found = [v for n, l, v in self.samples if n == name and l == want]
        assert len(found) <= 1, (name, labels, found)
        if not found:
            if default is not None:
                return default
            raise AssertionError(f"no sample {name}{want}")
        return found[0]

    def total(self, name, **labels):
        """Sum of every sample named `name` whose labels include `labels` (0 if none)."""
        return sum(v for _, v in self.series(name, **labels))

    def label_values(self, label):
        """Every value `label` takes in any sample."""
        return {l[label] for _, l, _ in self.samples if label in l}


def scrape(broker):
    status, body = broker.http_get("/metrics")
    assert status == 200, (status, body[:200])
    return Metrics(body.decode())
