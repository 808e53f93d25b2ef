"""How ``FabricError`` reads a failed call, for every form an error can take on the wire.

A real grpcio server in this process answers ``RunService.GetRun`` with the error each test
asks for — ``google.rpc`` details, Fabric's metadata, both, neither, a corrupt trailer — so
the client's reading of each is proven over the wire, including the ``google.rpc`` details
the Fabric server does not send yet (test_live.py checks what it sends today).
"""

from __future__ import annotations

import socket
import unittest
from concurrent import futures
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Dict, List, Tuple

import grpc
from google.protobuf import any_pb2, duration_pb2

from fabric_client import Fabric, FabricError, Issue
from fabric_client.errors import parse_retry_after
from fabric_client.types import error_details_pb2, run_pb2, run_pb2_grpc, status_pb2, workflow_pb2

Metadata = List[Tuple[str, object]]


def packed(*messages) -> List[any_pb2.Any]:
    out = []
    for m in messages:
        a = any_pb2.Any()
        a.Pack(m)
        out.append(a)
    return out


def status_details(code: grpc.StatusCode, text: str, *details) -> bytes:
    return status_pb2.Status(code=code.value[0], message=text, details=packed(*details)).SerializeToString()


class Answer:
    def __init__(self, code: grpc.StatusCode, text: str, *, headers: Metadata = (), trailers: Metadata = ()):
        self.code, self.text, self.headers, self.trailers = code, text, list(headers), list(trailers)


class ScriptedRunService(run_pb2_grpc.RunServiceServicer):
    """GetRun fails with the Answer registered under the requested id."""

    def __init__(self) -> None:
        self.answers: Dict[str, Answer] = {}

    def GetRun(self, request, context):
        answer = self.answers[request.id]
        if answer.headers:
            context.send_initial_metadata(answer.headers)
        context.set_trailing_metadata(answer.trailers)
        context.abort(answer.code, answer.text)


class ErrorsOnTheWire(unittest.TestCase):
    service: ScriptedRunService
    server: grpc.Server
    fabric: Fabric

    @classmethod
    def setUpClass(cls) -> None:
        cls.service = ScriptedRunService()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        run_pb2_grpc.add_RunServiceServicer_to_server(cls.service, cls.server)
        port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.fabric = Fabric(f"http://127.0.0.1:{port}", "fab_test0000_000000000000000000000000")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.fabric.close()
        cls.server.stop(None)

    def error_for(self, answer: Answer) -> FabricError:
        key = f"case-{len(self.service.answers)}"
        self.service.answers[key] = answer
        with self.assertRaises(FabricError) as caught:
            self.fabric.runs.get(key)
        return caught.exception

    def test_google_rpc_details_give_code_request_id_retry_after_and_issues(self):
        err = self.error_for(
            Answer(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "the organization's daily budget is spent",
                trailers=[
                    (
                        "grpc-status-details-bin",
                        status_details(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            "the organization's daily budget is spent",
                            error_details_pb2.ErrorInfo(reason="budget_exceeded", domain="fabric.dev", metadata={"period": "day"}),
                            error_details_pb2.RequestInfo(request_id="req-from-details"),
                            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=7, nanos=500_000_000)),
                            error_details_pb2.BadRequest(
                                field_violations=[
                                    error_details_pb2.BadRequest.FieldViolation(field="call.max_tokens", description="too many", reason="invalid_value")
                                ]
                            ),
                            error_details_pb2.Help(links=[error_details_pb2.Help.Link(url="https://fabric.dev/docs")]),
                        ),
                    )
                ],
            )
        )
        self.assertEqual(err.code, "budget_exceeded")
        self.assertEqual(err.grpc_status, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(err.message, "the organization's daily budget is spent")
        self.assertEqual(err.domain, "fabric.dev")
        self.assertEqual(dict(err.metadata), {"period": "day"})
        self.assertEqual(err.request_id, "req-from-details")
        self.assertEqual(err.retry_after, 7.5)
        self.assertEqual(list(err.issues), [Issue("call.max_tokens", "invalid_value", "too many")])
        self.assertTrue(err.retryable)
        self.assertEqual([type(d).__name__ for d in err.details], ["ErrorInfo", "RequestInfo", "RetryInfo", "BadRequest", "Help"])

    def test_google_rpc_details_win_over_fabric_metadata(self):
        err = self.error_for(
            Answer(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "slow down",
                headers=[("x-request-id", "req-from-header")],
                trailers=[
                    ("fabric-error-code", "resource_exhausted"),
                    ("retry-after", "30"),
                    (
                        "grpc-status-details-bin",
                        status_details(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            "slow down",
                            error_details_pb2.ErrorInfo(reason="rate_limited", domain="fabric.dev"),
                            error_details_pb2.RequestInfo(request_id="req-from-details"),
                            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=12)),
                        ),
                    ),
                ],
            )
        )
        self.assertEqual((err.code, err.request_id, err.retry_after), ("rate_limited", "req-from-details", 12.0))

    def test_with_both_kinds_of_issue_details_the_json_pointers_of_fabric_are_the_issues(self):
        err = self.error_for(
            Answer(
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid workflow",
                trailers=[
                    (
                        "grpc-status-details-bin",
                        status_details(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "invalid workflow",
                            error_details_pb2.BadRequest(
                                field_violations=[error_details_pb2.BadRequest.FieldViolation(field="nodes[0].operation", description="unknown operation", reason="unknown_operation")]
                            ),
                            workflow_pb2.ValidationIssue(path="/nodes/0/operation", code="unknown_operation", message="unknown operation"),
                        ),
                    )
                ],
            )
        )
        self.assertEqual(list(err.issues), [Issue("/nodes/0/operation", "unknown_operation", "unknown operation")])

    def test_fabric_metadata_alone_as_the_server_sends_today(self):
        err = self.error_for(
            Answer(
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid workflow",
                headers=[("x-request-id", "req-1")],
                trailers=[
                    ("fabric-error-code", "invalid_argument"),
                    (
                        "grpc-status-details-bin",
                        status_details(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "invalid workflow",
                            workflow_pb2.ValidationIssue(path="/nodes/0/operation", code="unknown_operation", message="unknown operation"),
                            workflow_pb2.ValidationIssue(path="/nodes/1/key", code="duplicate_key", message="duplicate key"),
                        ),
                    ),
                ],
            )
        )
        self.assertEqual(err.code, "invalid_argument")
        self.assertEqual(err.request_id, "req-1")
        self.assertIsNone(err.retry_after)
        self.assertIsNone(err.domain)
        self.assertEqual(
            list(err.issues),
            [Issue("/nodes/0/operation", "unknown_operation", "unknown operation"), Issue("/nodes/1/key", "duplicate_key", "duplicate key")],
        )
        self.assertFalse(err.retryable)
        self.assertIn("/nodes/0/operation: unknown operation", str(err))
        self.assertIn("[request req-1]", str(err))

    def test_retry_after_metadata_in_seconds_or_as_an_http_date(self):
        err = self.error_for(Answer(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", trailers=[("fabric-error-code", "rate_limited"), ("retry-after", "42")]))
        self.assertEqual((err.code, err.retry_after), ("rate_limited", 42.0))
        later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
        err = self.error_for(Answer(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", trailers=[("fabric-error-code", "budget_exceeded"), ("retry-after", later)]))
        self.assertEqual(err.code, "budget_exceeded")
        self.assertGreater(err.retry_after, 3500)
        self.assertLessEqual(err.retry_after, 3601)
        self.assertTrue(err.retryable)

    def test_budget_exceeded_without_a_time_to_wait_is_not_retryable(self):
        err = self.error_for(Answer(grpc.StatusCode.RESOURCE_EXHAUSTED, "over the run cap", trailers=[("fabric-error-code", "budget_exceeded")]))
        self.assertEqual(err.code, "budget_exceeded")
        self.assertIsNone(err.retry_after)
        self.assertFalse(err.retryable)

    def test_a_bare_grpc_error_is_named_after_its_status(self):
        err = self.error_for(Answer(grpc.StatusCode.PERMISSION_DENIED, "no"))
        self.assertEqual((err.code, err.grpc_status, err.request_id, list(err.issues)), ("permission_denied", grpc.StatusCode.PERMISSION_DENIED, None, []))
        err = self.error_for(Answer(grpc.StatusCode.UNAVAILABLE, "draining", trailers=[("fabric-error-code", "no_healthy_provider")]))
        self.assertEqual(err.code, "no_healthy_provider")
        self.assertTrue(err.retryable)

    def test_a_corrupt_details_trailer_still_gives_the_error(self):
        err = self.error_for(
            Answer(grpc.StatusCode.NOT_FOUND, "run not found", trailers=[("fabric-error-code", "not_found"), ("grpc-status-details-bin", b"\xff\xfe not a status")])
        )
        self.assertEqual((err.code, err.message, list(err.details)), ("not_found", "run not found", []))

    def test_an_unknown_detail_type_is_kept_packed(self):
        unknown = any_pb2.Any(type_url="type.googleapis.com/acme.v1.Mystery", value=b"\x08\x01")
        raw = status_pb2.Status(code=5, message="x", details=[unknown]).SerializeToString()
        err = self.error_for(Answer(grpc.StatusCode.NOT_FOUND, "x", trailers=[("grpc-status-details-bin", raw)]))
        self.assertEqual(err.code, "not_found")
        self.assertEqual([d.type_url for d in err.details], ["type.googleapis.com/acme.v1.Mystery"])


class NoServer(unittest.TestCase):
    def test_nothing_listening_is_a_retryable_network_error(self):
        with socket.socket() as s:  # a port that was free a moment ago and has no listener
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with Fabric(f"127.0.0.1:{port}", "fab_test0000_000000000000000000000000", timeout=30) as fabric:
            with self.assertRaises(FabricError) as caught:
                fabric.runs.get("r")
        self.assertEqual(caught.exception.code, "network_error")
        self.assertEqual(caught.exception.grpc_status, grpc.StatusCode.UNAVAILABLE)
        self.assertIsNone(caught.exception.request_id)
        self.assertTrue(caught.exception.retryable)


class RetryAfter(unittest.TestCase):
    def test_parse_retry_after(self):
        now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
        cases: List[Tuple[object, object]] = [
            ("120", 120.0),
            (" 1.5 ", 1.5),
            ("0", 0.0),
            ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
            ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),  # in the past: no wait, never negative
            ("-1", None),
            ("nan", None),
            ("soon", None),
            ("", None),
            (None, None),
        ]
        for value, expected in cases:
            with self.subTest(value=value):
                self.assertEqual(parse_retry_after(value, now=now), expected)


class Urls(unittest.TestCase):
    def test_url_forms(self):
        from fabric_client.client import _target

        cases: List[Tuple[str, object]] = [
            ("http://127.0.0.1:3002", ("127.0.0.1:3002", False)),
            ("https://fabric.example:8443/", ("fabric.example:8443", True)),
            ("https://fabric.example", ("fabric.example:443", True)),
            ("http://[::1]:3002", ("[::1]:3002", False)),
            ("localhost:3002", ("localhost:3002", False)),
        ]
        for url, expected in cases:
            with self.subTest(url=url):
                self.assertEqual(_target(url), expected)
        for bad in ("ftp://x:1", "http://x:1/prefix", "http://:1"):
            with self.subTest(url=bad), self.assertRaises(ValueError):
                _target(bad)


if __name__ == "__main__":
    unittest.main()
