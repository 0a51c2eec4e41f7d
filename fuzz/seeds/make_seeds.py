#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (fuzz/corpus/<target>/seed-*): valid inputs
that reach deep into each parser. Run from fuzz/: python3 seeds/make_seeds.py"""
import base64, json, os

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def s(field, text):
    data = text.encode() if isinstance(text, str) else text
    return varint(field << 3 | 2) + varint(len(data)) + data

def e(field, value):
    return varint(field << 3) + varint(value)

def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/seed-{name}", "wb") as f:
        f.write(data)

# requests: the method's index in STEP_METHODS, then the request message.
ref = s(1, "req-1") + s(2, "referrals/0190f3c2-7c4e-7a7e-8f6a-1c2d3e4f5a6b")
ts = e(1, 1_699_990_000)  # google.protobuf.Timestamp seconds
requests = {
    "acknowledge": (0, ref + s(3, "received")),
    "start-handling": (1, ref),
    "measure-order": (2, ref + s(3, e(1, 6) + s(2, ts) + s(3, s(1, "Zhang San") + s(2, "OFF-001")) + s(4, "ordered"))),
    "measure-penalty": (2, ref + s(3, e(1, 8) + s(2, ts) + s(5, "沪市监罚〔2024〕1号"))),
    "objection": (3, ref + s(3, s(1, "Acme Ltd") + s(2, "2023-11-01") + s(3, "2023-11-10") + s(4, "sample mislabelled") + s(5, s(1, "report.pdf")))),
    "reinspection": (4, ref + s(3, e(1, 2) + s(2, "CQC lab") + s(3, "R-2023-77") + s(4, "2023-11-12") + s(5, "fails again"))),
    "return": (5, ref + s(3, "not our jurisdiction") + s(4, "agencies/320000-SAMR")),
    "reroute": (6, ref + s(3, "agencies/320000-SAMR") + e(4, 1) + s(5, "producer is in Jiangsu")),
    "close": (7, ref + s(3, e(1, 1) + s(2, "rectified and re-checked"))),
    "reaction": (8, ref + s(3, e(4, 1) + s(5, "found on sale in Hangzhou"))),
}
for name, (method, body) in requests.items():
    write("requests", name, bytes([method]) + body)

# token: mode 1 (claims signed by the fixed key), valid at VERIFIED_AT for CONNECTION_FINGERPRINT.
fp = bytes.fromhex("5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5")  # CONNECTION_FINGERPRINT
x5t = base64.urlsafe_b64encode(fp).rstrip(b"=").decode()
T0 = 1_700_000_000
claims = {
    "iss": "yrd-exchange", "sub": "spiffe://yrd-exchange/agency/370000-AMR/system",
    "aud": "yrd-exchange", "exp": T0 + 600, "iat": T0 - 60, "nbf": T0 - 60,
    "jti": "6f1c1b3e-5d0a-4c39-9a55-0d6d0c3f3f10", "roles": ["results:read"],
    "cnf": {"x5t#S256": x5t}, "agency": "370000-AMR", "profile": "system",
}
write("token", "claims", b"\x01" + json.dumps(claims).encode())
officer = dict(claims, act={"sub": "officer-0042"})
write("token", "claims-officer", b"\x01" + json.dumps(officer).encode())
hdr = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "k1"}).encode()).rstrip(b"=")
body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
write("token", "text", b"\x00" + hdr + b"." + body + b".c2lnbmF0dXJl")

# results_import: the partner guide's row (dates before the fixed "today" 2024-06-01), as .csv
# (first byte even) and as a minimal .xlsx of inline strings (first byte odd).
header = "产品名称,商标,规格型号,生产日期,标称生产者名称,标称生产者地址,标称生产者统一社会信用代码,标称生产者行政区划代码,被抽样单位名称,被抽样单位统一社会信用代码,被抽样单位行政区划代码,电商平台,网店名称,网店网址,抽样方式,抽样日期,承检机构,报告编号,报告日期,依据标准,检验项目,检验结论,不合格项目"
row = "儿童塑料玩具车,/,XK-1,2024-02-01,某玩具有限公司,某路1号,91370102000000007C,370102,某商贸有限公司,91320102000000007P,320102,某电商平台,某玩具旗舰店,https://shop.example.com/toys?id=1,网购,2024-03-12,江苏省产品质量监督检验研究院,JS-2024-00042,2024-03-26,GB 6675.1-2014,增塑剂|≤ 0.1 %|0.35|%|不合格|是,不合格,增塑剂"
write("results_import", "guide-csv", b"\x00" + (header + "\n" + row + "\n").encode())

import io, zipfile
from xml.sax.saxutils import escape

def column(i):
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name

def sheet_xml(rows):
    out = []
    for r, cells in enumerate(rows, 1):
        cs = "".join(f'<c r="{column(c)}{r}" t="inlineStr"><is><t>{escape(v)}</t></is></c>' for c, v in enumerate(cells))
        out.append(f'<row r="{r}">{cs}</row>')
    return ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            + "".join(out) + "</sheetData></worksheet>")

parts = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    "xl/worksheets/sheet1.xml": sheet_xml([header.split(","), row.split(",")]),
}
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in parts.items():
        z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text)
write("results_import", "guide-xlsx", b"\x01" + buf.getvalue())

# audit_verify: an export of three canonical entries (yrd audit export --format jsonl).
import hashlib, datetime
lines = []
for i, (method, code, msg) in enumerate([
    ("/yrd.exchange.v1.SpotCheckService/PublishResult", 0, ""),
    ("/yrd.exchange.v1.DisposalService/AcknowledgeReferral", 9, "referral is closed"),
    ("yrd-exchange/DisposalScheduler/MarkOverdue", 0, ""),
]):
    time_us = 1_700_000_000_000_000 + i * 1_234_567
    leaf = {
        "v": 1, "time_us": time_us, "trace_id": f"{i:032x}", "span_id": f"{i + 1:016x}",
        "agency": "" if "Scheduler" in method else "320000-SAMR",
        "cert_fingerprint": "" if "Scheduler" in method else "ab" * 32,
        "profile": "" if "Scheduler" in method else "system", "officer": "",
        "token_id": "", "method": method, "resources": [f"referrals/r{i}"], "code": code,
        "message": msg, "request_sha256": "cd" * 32, "duration_us": 1500 + i,
    }
    text = json.dumps(leaf, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(b"\x00" + text.encode()).hexdigest()
    t = datetime.datetime.fromtimestamp(time_us // 1_000_000, datetime.timezone.utc)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{time_us % 1_000_000:06d}Z"
    lines.append(json.dumps(dict({"index": i, "leaf_hash": digest, "leaf_input": text, "time": stamp}, **leaf), ensure_ascii=False))
write("audit_verify", "three-entries", ("\n".join(lines) + "\n").encode())
write("audit_verify", "one-entry", (lines[0] + "\n").encode())
