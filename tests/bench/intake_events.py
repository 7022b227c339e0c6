#!/usr/bin/env python3
"""intake_events.py - the one 1 KB duban.problem.reported event every phase of
tests/bench/intake.sh sends (HTTP single, HTTP batch, kcat baseline, duban.inbound), so
that every figure is for the same bytes.

  intake_events.py template            the event on one line, id '@ID@' (for the wrk Lua)
  intake_events.py kcat N PREFIX       N lines 'KEY<TAB>EVENT', ids PREFIX-0 .. PREFIX-N-1
  intake_events.py batch N PREFIX      a JSON array of N events (one batch request body)
  intake_events.py count-results       reads a batch reply on stdin; prints
                                       'results=R accepted=A' (R=-1 if not a batch reply)
"""
import json
import sys

ID = "@ID@"
# Chinese description text of the kind a 12345 hotline operator writes; repeated up to
# the length that makes the whole event about 1 KB (UTF-8, 3 bytes per character).
TEXT = ("群众来电反映，某街道便民服务中心窗口工作人员在办理居住证业务时多次推诿扯皮，"
        "要求群众反复提交相同材料，且未一次性告知所需材料清单，导致群众往返奔波四次仍未办结。"
        "来电人同时反映窗口存在上班时间脱岗、态度生硬等问题，请求督促整改并反馈结果。")
TARGET = 1024  # bytes of the whole event, with an id of the usual length


def event(event_id, description):
    return {
        "specversion": "1.0", "id": event_id, "source": "/gov/hotline-12345",
        "type": "duban.problem.reported", "time": "2026-09-29T10:00:00+08:00",
        "datacontenttype": "application/json",
        "data": {
            "kind": "complaint", "category": "work_style", "severity": "high",
            "title": "某街道便民服务窗口推诿扯皮", "description": description,
            "region": "320102", "subject": {"unit_id": "U-STREET-07"},
            "reporter": {"anonymous": False, "name": "欧阳举报", "phone": "+8613812345678",
                         "email": "whistle.blower@example.cn"},
            "tags": ["明察暗访"],
        },
    }


def dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def template():
    """The event with id '@ID@', its description cut so that with a 16-byte id the event
    is as close to TARGET bytes as whole characters allow."""
    typical_id = "x" * 16
    text = TEXT * 4
    n = len(text)
    while n > 0 and len(dump(event(typical_id, text[:n])).encode()) > TARGET:
        n -= 1
    return dump(event(ID, text[:n]))


def main(argv):
    if len(argv) >= 2 and argv[1] == "template":
        print(template())
    elif len(argv) == 4 and argv[1] == "kcat":
        head, tail = template().split(ID)
        out = sys.stdout
        for i in range(int(argv[2])):
            key = f"{argv[3]}-{i}"
            out.write(f"{key}\t{head}{key}{tail}\n")
    elif len(argv) == 4 and argv[1] == "batch":
        head, tail = template().split(ID)
        print("[" + ",".join(f"{head}{argv[3]}-{i}{tail}" for i in range(int(argv[2])))
              + "]")
    elif len(argv) == 2 and argv[1] == "count-results":
        try:
            results = json.load(sys.stdin)["results"]
        except (ValueError, KeyError, TypeError):
            print("results=-1 accepted=0")
            return 0
        accepted = sum(1 for r in results
                       if isinstance(r, dict) and r.get("status") == "accepted")
        print(f"results={len(results)} accepted={accepted}")
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
