"""Small parsers for the files a firewall is configured with, so that two renderings can be compared
by what their consumers read (FRR, nft, systemd), not by comments, blank lines and indentation.

- parse_frr(text): frr.conf as FRR reads it: top-level statements, `vrf` blocks, `interface`
  blocks, `router bgp <asn> [vrf <vrf>]` blocks with their address-families, route-map entries,
  prefix-lists (in the order FRR evaluates them: by sequence number, entries without one numbered
  as FRR numbers them, the highest so far + 5).
- parse_nft(text): tables, their sets and chains; a chain's base-chain line and its rules in order.
- parse_ini(text): a systemd unit/.network/.netdev file as a multiset of sections.

diff_*(ours, theirs) return the differences as readable lines; an empty list means equal.
"""
import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

# ---- FRR -------------------------------------------------------------------------------------------


def parse_frr(text: str) -> Dict[str, object]:
    model: Dict[str, object] = {
        "global": Counter(),
        "vrf": {},
        "interface": {},
        "bgp": {},
        "route-map": {},
        "prefix-list": {},
        "line": {},
    }
    block: Optional[Tuple[str, object]] = None  # (kind, key)
    af: Optional[str] = None
    raw_lists: Dict[Tuple[str, str], List[Tuple[Optional[int], str, str, Tuple[str, ...]]]] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("!") or stripped.startswith("#"):
            continue
        indented = line[0] == " "
        words = stripped.split()
        if not indented:
            af = None
            block = None
            if words[0] == "vrf" and len(words) == 2:
                block = ("vrf", words[1])
            elif words[0] == "interface":
                block = ("interface", " ".join(words[1:]))
            elif words[:2] == ["router", "bgp"]:
                key = (words[2], words[4] if len(words) >= 5 and words[3] == "vrf" else "")
                block = ("bgp", key)
                model["bgp"].setdefault(key, {"": Counter()})
            elif words[0] == "route-map":
                block = ("route-map", (words[1], words[2], int(words[3])))
            elif words[0] == "line":
                block = ("line", " ".join(words[1:]))
            elif words[0] in ("ip", "ipv6") and words[1] == "prefix-list":
                family, name, rest = words[0], words[2], words[3:]
                seq = None
                if rest[0] == "seq":
                    seq, rest = int(rest[1]), rest[2:]
                raw_lists.setdefault((family, name), []).append((seq, rest[0], rest[1], tuple(rest[2:])))
                continue
            else:
                model["global"][stripped] += 1
                continue
            if block[0] != "bgp":
                model[block[0]].setdefault(block[1], Counter())
            continue
        if block is None:
            raise ValueError(f"indented line outside a block: {stripped!r}")
        kind, key = block
        if kind == "vrf" and stripped == "exit-vrf":
            continue
        if kind == "bgp":
            if words[0] == "address-family":
                af = " ".join(words[1:])
                model["bgp"][key].setdefault(af, Counter())
                continue
            if stripped == "exit-address-family":
                af = None
                continue
            model["bgp"][key][af or ""][stripped] += 1
            continue
        model[kind][key][stripped] += 1
    model["prefix-list"] = {k: _evaluation_order(v) for k, v in raw_lists.items()}
    return model


def _evaluation_order(entries):
    """Entries as FRR evaluates them: by sequence number; one written without gets the highest
    number so far + 5 (FRR's default step)."""
    numbered = []
    highest = 0
    for seq, action, prefix, rest in entries:
        if seq is None:
            seq = highest + 5
        highest = max(highest, seq)
        numbered.append((seq, action, prefix, rest))
    return [(action, prefix) + rest for _seq, action, prefix, rest in sorted(numbered, key=lambda e: e[0])]


def _diff_counters(where: str, ours: Counter, theirs: Counter) -> List[str]:
    out = []
    for s in sorted(set(ours) | set(theirs)):
        if ours[s] != theirs[s]:
            if theirs[s] > ours[s]:
                out.append(f"{where}: only theirs: {s}")
            else:
                out.append(f"{where}: only ours: {s}")
    return out


def diff_frr(ours: Dict[str, object], theirs: Dict[str, object]) -> List[str]:
    out = _diff_counters("global", ours["global"], theirs["global"])
    for kind in ("vrf", "interface", "route-map", "line"):
        for key in sorted(set(ours[kind]) | set(theirs[kind]), key=str):
            label = f"{kind} {' '.join(map(str, key)) if isinstance(key, tuple) else key}"
            if key not in ours[kind]:
                out.append(f"{label}: only theirs")
            elif key not in theirs[kind]:
                out.append(f"{label}: only ours")
            else:
                out += _diff_counters(label, ours[kind][key], theirs[kind][key])
    for key in sorted(set(ours["bgp"]) | set(theirs["bgp"])):
        label = f"router bgp {key[0]}" + (f" vrf {key[1]}" if key[1] else "")
        if key not in ours["bgp"] or key not in theirs["bgp"]:
            out.append(f"{label}: only {'theirs' if key not in ours['bgp'] else 'ours'}")
            continue
        a, b = ours["bgp"][key], theirs["bgp"][key]
        for af in sorted(set(a) | set(b)):
            where = label + (f" address-family {af}" if af else "")
            out += _diff_counters(where, a.get(af, Counter()), b.get(af, Counter()))
    for key in sorted(set(ours["prefix-list"]) | set(theirs["prefix-list"])):
        label = f"{key[0]} prefix-list {key[1]}"
        a, b = ours["prefix-list"].get(key), theirs["prefix-list"].get(key)
        if a != b:
            out.append(f"{label}: ours {a}, theirs {b}")
    return out


# ---- nftables ---------------------------------------------------------------------------------------


def parse_nft(text: str) -> Dict[Tuple[str, str], Dict[str, object]]:
    """{(family, table): {"chains": {name: {"base": str or None, "rules": [str]}}, "sets": {name: [str]}}}"""
    tables: Dict[Tuple[str, str], Dict[str, object]] = {}
    table = None
    obj = None  # ("chain" | "set", name)
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            continue
        if line.startswith("table ") and line.endswith("{"):
            _, family, name, _ = line.split()
            table = tables.setdefault((family, name), {"chains": {}, "sets": {}})
            continue
        if line in ("}",):
            if obj is not None:
                obj = None
            else:
                table = None
            continue
        if table is None:
            raise ValueError(f"statement outside a table: {line!r}")
        m = re.match(r"^(chain|set) (\S+) \{$", line)
        if m:
            obj = (m.group(1), m.group(2))
            if obj[0] == "chain":
                table["chains"][obj[1]] = {"base": None, "rules": []}
            else:
                table["sets"][obj[1]] = []
            continue
        if obj is None:
            raise ValueError(f"statement outside a chain or set: {line!r}")
        if obj[0] == "set":
            table["sets"][obj[1]].append(line)
        elif line.startswith("type ") and table["chains"][obj[1]]["base"] is None and not table["chains"][obj[1]]["rules"]:
            table["chains"][obj[1]]["base"] = line
        else:
            table["chains"][obj[1]]["rules"].append(line)
    return tables


def diff_nft(ours, theirs) -> List[str]:
    out = []
    for key in sorted(set(ours) | set(theirs)):
        label = f"table {key[0]} {key[1]}"
        if key not in ours or key not in theirs:
            out.append(f"{label}: only {'theirs' if key not in ours else 'ours'}")
            continue
        for what in ("sets", "chains"):
            a, b = ours[key][what], theirs[key][what]
            for name in sorted(set(a) | set(b)):
                where = f"{label} {what[:-1]} {name}"
                if name not in a or name not in b:
                    out.append(f"{where}: only {'theirs' if name not in a else 'ours'}")
                elif what == "sets" and a[name] != b[name]:
                    out.append(f"{where}: ours {a[name]}, theirs {b[name]}")
                elif what == "chains":
                    if a[name]["base"] != b[name]["base"]:
                        out.append(f"{where}: base ours {a[name]['base']!r}, theirs {b[name]['base']!r}")
                    out += _diff_sequences(where, a[name]["rules"], b[name]["rules"])
    return out


def _diff_sequences(where: str, a: List[str], b: List[str]) -> List[str]:
    """Rules are evaluated in order: report the first position where they part and what is left."""
    if a == b:
        return []
    import difflib

    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for r in a[i1:i2]:
            out.append(f"{where}: only ours (rule {i1 + 1}): {r}")
        for r in b[j1:j2]:
            out.append(f"{where}: only theirs (rule {j1 + 1}): {r}")
    return out


# ---- systemd unit-style files -------------------------------------------------------------------


def parse_ini(text: str) -> Counter:
    """A multiset of sections, each (name, its key=value pairs sorted): a section name repeats
    ([Address], [BridgeVLAN]) and each occurrence is its own group; within a section systemd does
    not care about the order (repeated keys such as VXLAN= or Address= add to a set)."""
    groups = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = (line[1:-1], [])
            groups.append(current)
            continue
        if current is None:
            raise ValueError(f"key outside a section: {line!r}")
        key, _, value = line.partition("=")
        current[1].append((key.strip(), value.strip()))
    return Counter((name, tuple(sorted(keys))) for name, keys in groups)


def diff_ini(where: str, ours: Counter, theirs: Counter) -> List[str]:
    out = []
    for g in sorted(set(ours) | set(theirs)):
        if ours[g] != theirs[g]:
            side = "theirs" if theirs[g] > ours[g] else "ours"
            out.append(f"{where}: only {side}: [{g[0]}] " + " ".join(f"{k}={v}" for k, v in g[1]))
    return out
