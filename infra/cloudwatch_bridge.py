#!/usr/bin/env python3
"""A CloudWatch bridge for the tests: Smithy RPC v2 CBOR in, moto's query API out.

The current aws-sdk-cloudwatch (>= 1.100) speaks Smithy RPC v2 CBOR
(`POST /service/GraniteServiceVersion20100801/operation/<Operation>`), which moto's
server does not answer. This bridge decodes each call, makes the same call with
boto3 against moto, and encodes moto's answer (or error) back as CBOR, so the
product keeps the current SDK and is still tested end to end.

    python cloudwatch_bridge.py --port 5001 --moto http://127.0.0.1:5000

Point the SDK at it with `AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:5001`.
Test harness only: loopback, dummy credentials, no TLS.

moto ignores DescribeAlarms' MaxRecords and NextToken; the bridge pages the
answer itself, so the product's pagination is exercised too.
"""

import argparse
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore
import botocore.exceptions
import cbor2

PATH = re.compile(r"^/service/GraniteServiceVersion20100801/operation/([A-Za-z]+)$")
REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
NAMESPACE = "com.amazonaws.cloudwatch"

_clients = {}
_clients_lock = threading.Lock()


def client_for(moto_url, region):
    with _clients_lock:
        if region not in _clients:
            _clients[region] = boto3.client(
                "cloudwatch",
                region_name=region,
                endpoint_url=moto_url,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
        return _clients[region]


def page_alarms(answer, max_records, token):
    """Pages DescribeAlarms' answer, which moto returns whole."""
    if not max_records:
        return answer
    items = [("MetricAlarms", a) for a in answer.get("MetricAlarms", [])]
    items += [("CompositeAlarms", a) for a in answer.get("CompositeAlarms", [])]
    start = int(token or 0)
    page = items[start : start + max_records]
    paged = {"MetricAlarms": [], "CompositeAlarms": []}
    for kind, alarm in page:
        paged[kind].append(alarm)
    if start + max_records < len(items):
        paged["NextToken"] = str(start + max_records)
    return paged


class Bridge(BaseHTTPRequestHandler):
    moto_url = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("bridge: " + (fmt % args) + "\n")

    def do_GET(self):
        self.reply(200, b"cloudwatch bridge\n", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = PATH.match(self.path)
        if not match:
            return self.error(404, "UnknownOperationException", f"no route {self.path}")
        operation = match.group(1)
        region_match = REGION.search(self.headers.get("Authorization", ""))
        region = region_match.group(1) if region_match else "us-east-1"
        try:
            params = cbor2.loads(body) if body else {}
        except Exception as e:  # noqa: BLE001 - any decode failure is the caller's
            return self.error(400, "SerializationException", f"bad CBOR: {e}")
        client = client_for(self.moto_url, region)
        paging = None
        if operation == "DescribeAlarms":
            paging = (params.pop("MaxRecords", None), params.pop("NextToken", None))
        try:
            method = getattr(client, botocore.xform_name(operation))
            answer = method(**params)
        except botocore.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            return self.error(status, err.get("Code", "InternalFailure"), err.get("Message", ""))
        except (botocore.exceptions.ParamValidationError, AttributeError) as e:
            return self.error(400, "ValidationError", str(e))
        answer.pop("ResponseMetadata", None)
        if paging:
            answer = page_alarms(answer, *paging)
        self.reply(200, cbor2.dumps(answer, datetime_as_timestamp=True), "application/cbor")

    def error(self, status, code, message):
        body = cbor2.dumps({"__type": f"{NAMESPACE}#{code}", "message": message})
        fault = "Sender" if status < 500 else "Receiver"
        self.reply(status, body, "application/cbor", {"x-amzn-query-error": f"{code};{fault}"})

    def reply(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("smithy-protocol", "rpc-v2-cbor")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    Bridge.moto_url = args.moto
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Bridge)
    server.verbose = args.verbose
    server.daemon_threads = True
    json.dump({"listening": args.port, "moto": args.moto}, sys.stderr)
    sys.stderr.write("\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
