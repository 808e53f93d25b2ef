"""The client against a real ``fabric dev`` (see live_server.py): every call crosses the
wire to the server of this repository."""

from __future__ import annotations

import json
import secrets
import unittest

import grpc
from google.protobuf import json_format

from fabric_client import Fabric, FabricError
from fabric_client.types import ExecuteResponse, TextDelta, error_details_pb2, identity_pb2, identity_pb2_grpc, usage_pb2, usage_pb2_grpc

from .live_server import REPO_ROOT, LiveFabric
from .tcp_proxy import TcpProxy

# Generous ceilings for waits on a busy machine; a passing test never gets near them.
RUN_CEILING_SECONDS = 120.0


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


def wait_signal_spec(name: str) -> dict:
    """A run that waits in `gate` until it is signalled, then finishes with `after`."""
    return {
        "name": name,
        "nodes": [
            {"key": "gate", "operation": "workflow.wait_signal", "outputs": {"*": "$context.gate"}},
            {"key": "after", "operation": "workflow.noop", "depends_on": ["gate"]},
        ],
    }


class LiveTestCase(unittest.TestCase):
    server: LiveFabric
    fabric: Fabric

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = LiveFabric.shared()
        cls.fabric = Fabric(cls.server.grpc_url, cls.server.api_key)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.fabric.close()

    def organization_id(self) -> str:
        me = identity_pb2_grpc.IdentityServiceStub(self.fabric.channel).GetMe(identity_pb2.GetMeRequest(), timeout=30)
        return me.organization_id


class WorkflowsAndRuns(LiveTestCase):
    def test_upsert_returns_the_stored_definition_and_the_same_version_for_the_same_spec(self):
        spec = json.loads((REPO_ROOT / "examples" / "smoke.json").read_text())
        spec["name"] = unique("py-smoke")
        first = self.fabric.workflows.upsert(spec)
        again = self.fabric.workflows.upsert(spec)
        self.assertEqual(first.name, spec["name"])
        self.assertEqual(first.version, 1)
        self.assertEqual([n.key for n in first.spec.nodes], ["shout", "gen"])
        self.assertEqual(again.id, first.id)
        self.assertEqual(self.fabric.workflows.get(first.id).spec, first.spec)

    def test_a_run_started_wait_ends_completed_with_the_context_the_nodes_wrote(self):
        spec = json.loads((REPO_ROOT / "examples" / "smoke.json").read_text())
        spec["name"] = unique("py-smoke")
        workflow = self.fabric.workflows.upsert(spec)
        started = self.fabric.runs.start(workflow_id=workflow.id, input={"topic": "hello world"}, metadata={"from": "python"})
        self.assertIn(started.status, {"pending", "running", "completed"})
        self.assertEqual(started.workflow_id, workflow.id)

        done = self.fabric.runs.wait(started.id, timeout=RUN_CEILING_SECONDS)
        self.assertEqual(done.status, "completed")
        self.assertEqual(dict(done.context), {"topic": "hello world", "shouted": "HELLO WORLD", "answer": "HELLO WORLD"})
        self.assertEqual([(n.key, n.status) for n in done.nodes], [("shout", "succeeded"), ("gen", "succeeded")])
        self.assertEqual(self.fabric.runs.get(started.id).status, "completed")

    def test_watch_yields_every_event_once_in_order_and_ends_after_the_terminal_one(self):
        spec = json.loads((REPO_ROOT / "examples" / "smoke.json").read_text())
        spec["name"] = unique("py-smoke")
        run = self.fabric.runs.start(workflow_name=self.fabric.workflows.upsert(spec).name, input={"topic": "x"})
        events = list(self.fabric.runs.watch(run.id, timeout=RUN_CEILING_SECONDS))
        ids = [e.id for e in events]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(events[0].kind, "workflow.run.created")
        self.assertEqual(events[-1].kind, "workflow.run.completed")
        self.assertTrue(all(e.run_id == run.id for e in events))
        self.assertIn(("workflow.node.completed", "gen"), [(e.kind, e.node_key) for e in events])
        # Resuming after an event replays exactly what followed it.
        middle = events[len(events) // 2]
        resumed = list(self.fabric.runs.watch(run.id, after_id=middle.id, timeout=RUN_CEILING_SECONDS))
        self.assertEqual([e.id for e in resumed], [i for i in ids if i > middle.id])
        # Resuming after the terminal event: nothing more, and the watch ends.
        self.assertEqual(list(self.fabric.runs.watch(run.id, after_id=events[-1].id, timeout=RUN_CEILING_SECONDS)), [])

    def test_watch_resumes_after_a_dropped_connection_without_gap_or_duplicate(self):
        workflow = self.fabric.workflows.upsert(wait_signal_spec(unique("py-gate")))
        run = self.fabric.runs.start(workflow_id=workflow.id)
        host, port = self.server.grpc_url.split("//")[1].rsplit(":", 1)
        proxy = TcpProxy(host, int(port))
        self.addCleanup(proxy.close)
        with Fabric(f"http://127.0.0.1:{proxy.port}", self.server.api_key) as proxied:
            stream = proxied.runs.watch(run.id, timeout=RUN_CEILING_SECONDS)
            seen = []
            for event in stream:
                seen.append(event)
                if event.kind == "workflow.run.waiting":
                    break_point = len(seen)
                    break
            else:
                self.fail(f"the run never waited: {[e.kind for e in seen]}")
            # Mid-stream: drop the connection under the client, then let the run go on.
            self.assertGreaterEqual(proxy.cut(), 1)
            self.fabric.runs.signal(run.id, {"approved": True})
            seen.extend(stream)
            stream.close()
        self.assertGreaterEqual(proxy.accepted, 2, "the client reconnected through the proxy")
        self.assertGreater(len(seen), break_point)
        everything = list(self.fabric.runs.watch(run.id, timeout=RUN_CEILING_SECONDS))
        self.assertEqual([(e.id, e.kind) for e in seen], [(e.id, e.kind) for e in everything])
        self.assertEqual(seen[-1].kind, "workflow.run.completed")
        self.assertEqual(json_format.MessageToDict(self.fabric.runs.get(run.id).context)["gate"], {"approved": True})

    def test_wait_gives_up_with_timeout_and_leaves_the_run_alone(self):
        workflow = self.fabric.workflows.upsert(wait_signal_spec(unique("py-gate")))
        run = self.fabric.runs.start(workflow_id=workflow.id)
        # The run waits for a signal that only comes later: no wait can see it finish.
        with self.assertRaises(FabricError) as caught:
            self.fabric.runs.wait(run.id, timeout=1.0)
        self.assertEqual(caught.exception.code, "timeout")
        self.assertNotIn(self.fabric.runs.get(run.id).status, {"completed", "failed", "cancelled"})
        self.fabric.runs.signal(run.id, {})
        self.assertEqual(self.fabric.runs.wait(run.id, timeout=RUN_CEILING_SECONDS).status, "completed")

    def test_cancel_ends_the_run_cancelled(self):
        workflow = self.fabric.workflows.upsert(wait_signal_spec(unique("py-gate")))
        run = self.fabric.runs.start(workflow_id=workflow.id)
        self.fabric.runs.cancel(run.id, "not needed")
        self.assertEqual(self.fabric.runs.wait(run.id, timeout=RUN_CEILING_SECONDS).status, "cancelled")


class Providers(LiveTestCase):
    def test_execute_answers_with_text_usage_cost_and_routing(self):
        result = self.fabric.providers.execute("hello", max_tokens=64)
        self.assertIsInstance(result, ExecuteResponse)
        self.assertEqual(result.text, "hello")
        self.assertEqual(result.provider, "echo")
        self.assertGreater(result.usage.input_tokens, 0)
        self.assertTrue(result.routing.why)
        self.assertTrue(result.usage_record_id)

    def test_execute_takes_any_field_of_the_provider_call(self):
        result = self.fabric.providers.execute(messages=[{"role": "user", "content": "from messages"}], provider="echo")
        self.assertEqual(result.text, "from messages")

    def test_stream_yields_deltas_that_add_up_to_the_result_then_ends(self):
        chunks = list(self.fabric.providers.stream("hello there streaming world"))
        deltas, result = chunks[:-1], chunks[-1]
        self.assertTrue(deltas)
        self.assertTrue(all(isinstance(d, TextDelta) for d in deltas))
        self.assertIsInstance(result, ExecuteResponse)
        self.assertEqual("".join(d.text for d in deltas), result.text)
        self.assertEqual(result.text, "hello there streaming world")


class Errors(LiveTestCase):
    """What the server sends: the status, ``fabric-error-code``, ``x-request-id``,
    ``retry-after``, ``fabric.v1.ValidationIssue`` details, and the ``google.rpc`` details."""

    def test_an_unknown_run_is_not_found_with_the_request_id(self):
        with self.assertRaises(FabricError) as caught:
            self.fabric.runs.get("00000000-0000-4000-8000-000000000000")
        err = caught.exception
        self.assertEqual(err.code, "not_found")
        self.assertEqual(err.grpc_status, grpc.StatusCode.NOT_FOUND)
        self.assertRegex(err.request_id or "", r"^[0-9a-f-]{36}$")
        self.assertIn("not found", err.message)
        self.assertFalse(err.retryable)

    def test_a_wrong_api_key_is_unauthenticated(self):
        with Fabric(self.server.grpc_url, "fab_wrongkey_000000000000000000000000") as stranger:
            with self.assertRaises(FabricError) as caught:
                stranger.runs.get("00000000-0000-4000-8000-000000000000")
        self.assertEqual(caught.exception.code, "unauthenticated")
        self.assertEqual(caught.exception.grpc_status, grpc.StatusCode.UNAUTHENTICATED)

    def test_an_invalid_workflow_is_refused_with_every_issue(self):
        spec = {"name": unique("py-bad"), "nodes": [{"key": "a", "operation": "no.such.op", "depends_on": ["ghost"]}]}
        with self.assertRaises(FabricError) as caught:
            self.fabric.workflows.upsert(spec)
        err = caught.exception
        self.assertEqual(err.code, "invalid_argument")
        self.assertEqual(err.grpc_status, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(
            sorted((i.path, i.code) for i in err.issues),
            [("/nodes/0/depends_on/0", "unknown_dependency"), ("/nodes/0/operation", "unknown_operation")],
        )
        self.assertTrue(err.request_id)

    def test_a_request_field_the_contract_does_not_have_is_refused_before_sending(self):
        with self.assertRaises(FabricError) as caught:
            self.fabric.runs.start(workflow_name="x", no_such_field=1)
        self.assertEqual(caught.exception.code, "invalid_argument")
        self.assertIsNone(caught.exception.request_id)

    def test_a_rate_limited_call_carries_retry_after(self):
        policies = usage_pb2_grpc.PolicyServiceStub(self.fabric.channel)
        organization_id = self.organization_id()
        policies.SetPolicy(usage_pb2.SetPolicyRequest(organization_id=organization_id, requests_per_minute_per_key=1), timeout=30)
        self.addCleanup(lambda: policies.SetPolicy(usage_pb2.SetPolicyRequest(organization_id=organization_id), timeout=30))
        # One call per minute: of two calls in a row, the second is refused at the latest.
        with self.assertRaises(FabricError) as caught:
            for _ in range(2):
                self.fabric.providers.execute("hello")
        err = caught.exception
        self.assertEqual(err.code, "rate_limited")
        self.assertEqual(err.grpc_status, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIsNotNone(err.retry_after)
        self.assertGreater(err.retry_after, 0)
        self.assertLessEqual(err.retry_after, 60)
        self.assertTrue(err.retryable)
        self.assertTrue(err.request_id)

    def test_errors_carry_google_rpc_details(self):
        """ErrorInfo (reason = the stable code), RequestInfo, BadRequest and RetryInfo,
        read from ``grpc-status-details-bin`` rather than from Fabric's own metadata."""
        with self.assertRaises(FabricError) as caught:
            self.fabric.runs.get("00000000-0000-4000-8000-000000000000")
        err = caught.exception
        info = next(d for d in err.details if isinstance(d, error_details_pb2.ErrorInfo))
        self.assertEqual(info.reason, "not_found")
        self.assertEqual(err.code, "not_found")
        self.assertTrue(err.domain)
        request_info = next(d for d in err.details if isinstance(d, error_details_pb2.RequestInfo))
        self.assertEqual(request_info.request_id, err.request_id)

        with self.assertRaises(FabricError) as caught:
            self.fabric.workflows.upsert({"name": unique("py-bad"), "nodes": [{"key": "a", "operation": "no.such.op"}]})
        bad_request = next(d for d in caught.exception.details if isinstance(d, error_details_pb2.BadRequest))
        self.assertTrue(bad_request.field_violations)
        # One violation per issue: the issue's JSON pointer as a protobuf field path
        # (error_details.proto: `nodes[0].operation`), the same reason.
        self.assertEqual([(i.path, i.code) for i in caught.exception.issues], [("/nodes/0/operation", "unknown_operation")])
        self.assertEqual([(v.field, v.reason) for v in bad_request.field_violations], [("nodes[0].operation", "unknown_operation")])

        policies = usage_pb2_grpc.PolicyServiceStub(self.fabric.channel)
        organization_id = self.organization_id()
        policies.SetPolicy(usage_pb2.SetPolicyRequest(organization_id=organization_id, requests_per_minute_per_key=1), timeout=30)
        self.addCleanup(lambda: policies.SetPolicy(usage_pb2.SetPolicyRequest(organization_id=organization_id), timeout=30))
        with self.assertRaises(FabricError) as caught:
            for _ in range(2):
                self.fabric.providers.execute("hello")
        retry_info = next(d for d in caught.exception.details if isinstance(d, error_details_pb2.RetryInfo))
        self.assertEqual(caught.exception.retry_after, retry_info.retry_delay.ToTimedelta().total_seconds())


if __name__ == "__main__":
    unittest.main()
