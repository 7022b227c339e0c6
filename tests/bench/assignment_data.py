#!/usr/bin/env python3
"""assignment_data.py - what tests/bench/assignment.sh feeds the assignment service: a
directory of 1,000 officers, 200 routing rules, and duban.case.received events as
intake writes them (about 1 KB, Chinese text). Seeded, so every run has the same data.

  assignment_data.py config DIR        writes DIR/directory.json and DIR/rules.json
  assignment_data.py events N PREFIX   N lines 'CASE_ID<TAB>EVENT' for kcat -K '\\t'
"""
import json
import random
import sys

GROUPS = 50          # inspection groups that handle cases, 20 officers each
PER_GROUP = 20
SUBJECTS = 100       # units cases are about
RULES = 200
KINDS = ["clue", "finding", "complaint", "weak_link", "warning"]
CATEGORIES = ["political_building", "team_management", "work_management",
              "office_management", "responsibility", "discipline_enforcement",
              "risk_prevention", "work_style", "violation"]
SEVERITIES = ["low", "normal", "high", "urgent"]
REGIONS = [f"3201{d:02d}" for d in range(1, 16)] + [f"3202{d:02d}" for d in range(1, 10)]
TEXT = ("群众来电反映，某街道便民服务中心窗口工作人员在办理居住证业务时多次推诿扯皮，"
        "要求群众反复提交相同材料，且未一次性告知所需材料清单，导致群众往返奔波四次仍未办结。"
        "来电人同时反映窗口存在上班时间脱岗、态度生硬等问题，请求督促整改并反馈结果。")


def group(g):
    return f"G-{g:03d}"


def subject(s):
    return f"S-{s:03d}"


def config(out_dir):
    rnd = random.Random(20261120)
    units = [{"id": "U-CMO", "name": "案件监督管理室", "kind": "commission"}]
    units += [{"id": group(g), "name": f"派驻第{g}纪检监察组", "kind": "inspection_group",
               "head": f"O-{g:03d}-00", "parent": "U-CMO"} for g in range(GROUPS)]
    units += [{"id": subject(s), "name": f"被反映单位{s}", "kind": "street_office"}
              for s in range(SUBJECTS)]
    officers = []
    for g in range(GROUPS):
        for k in range(PER_GROUP):
            o = {"id": f"O-{g:03d}-{k:02d}", "name": f"干部{g}-{k}", "unit": group(g),
                 "roles": ["head", "handler"] if k == 0 else ["handler"],
                 "phone": f"+86138{g:03d}{k:05d}", "active": rnd.random() > 0.05,
                 "conflicts": sorted({subject(rnd.randrange(SUBJECTS))
                                      for _ in range(rnd.randrange(4))})}
            if rnd.random() < 0.5:
                o["max_open"] = rnd.randrange(80, 400)
            officers.append(o)
    rules = []
    for r in range(RULES):
        match = {"subject_unit": sorted({subject(rnd.randrange(SUBJECTS))
                                         for _ in range(1 + rnd.randrange(2))})}
        if rnd.random() < 0.5:
            match["kind"] = rnd.sample(KINDS, 3)
        if rnd.random() < 0.4:
            match["severity"] = rnd.sample(SEVERITIES, 2)
        if rnd.random() < 0.3:
            match["category"] = rnd.sample(CATEGORIES, 5)
        if rnd.random() < 0.3:
            match["region_prefix"] = [rnd.choice(REGIONS)[:4 + rnd.randrange(3)]]
        rules.append({"id": f"R-{r:03d}", "match": match, "unit": group(rnd.randrange(GROUPS)),
                      "strategy": "round_robin" if r % 2 else "least_loaded"})
    with open(f"{out_dir}/directory.json", "w", encoding="utf-8") as f:
        json.dump({"units": units, "officers": officers}, f, ensure_ascii=False)
    with open(f"{out_dir}/rules.json", "w", encoding="utf-8") as f:
        json.dump({"rules": rules, "fallback_unit": group(0),
                   "fallback_strategy": "least_loaded"}, f, ensure_ascii=False)


def events(n, prefix):
    rnd = random.Random(7)
    out = sys.stdout
    for i in range(n):
        case_id = f"DB{prefix}{i:010d}"[:28]
        data = {"case_id": case_id, "kind": rnd.choice(KINDS),
                "category": rnd.choice(CATEGORIES), "severity": rnd.choice(SEVERITIES),
                "title": "某街道便民服务窗口推诿扯皮", "description": TEXT * 2,
                "region": rnd.choice(REGIONS),
                # a few cases are about units the rules never name: the fallback
                "subject": {"unit_id": subject(rnd.randrange(SUBJECTS + 5))},
                "anonymous": True, "received_at": "2026-11-20T09:05:00+08:00",
                "clock_start": "2026-11-20T09:00:00+08:00",
                "origin": {"source": "/gov/hotline-12345", "id": f"{prefix}-{i}"}}
        event = {"specversion": "1.0", "id": f"{case_id}.received",
                 "source": "/duban/intake", "type": "duban.case.received",
                 "subject": case_id, "time": "2026-11-20T09:05:00+08:00",
                 "datacontenttype": "application/json", "data": data}
        out.write(case_id + "\t" + json.dumps(event, ensure_ascii=False,
                                              separators=(",", ":")) + "\n")


def main(argv):
    if len(argv) == 3 and argv[1] == "config":
        config(argv[2])
    elif len(argv) == 4 and argv[1] == "events":
        events(int(argv[2]), argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
