"""The wire/ package encodes exactly the bytes the single wire.py module did.

The hex vectors below were produced by wire.py as it stood before the split (ce2e0fe); any
change to a field name, an enum number or a tag breaks them, and with them compatibility
with stored data and running peers.
"""

from shoal import wire


def _samples() -> dict[str, bytes]:
    w = wire
    ev = w.HistoryEvent(
        event_id=5, event_time=1.5, event_type=w.EventType.CHILD_WORKFLOW_EXECUTION_STARTED,
        attributes=w.ChildWorkflowExecutionStartedAttributes(
            namespace="default", initiated_event_id=4,
            workflow_execution=w.WorkflowExecution(workflow_id="c", run_id="r"),
            workflow_type="Child"))
    start = w.StartWorkflowRequest(workflow_id="wf-1", workflow_type="Greet", task_queue="q",
                                   request_id="rq", input=[b"\x01"])
    return {
        "start_request": w.encode_request(7, w.Op.START_WORKFLOW, start),
        "error": w.encode_err(3, w.ShoalError(w.Code.NOT_FOUND, "no such workflow")),
        "child_event": w.dumps(ev),
        "command": w.dumps(w.StartTimerCommand(timer_id="t1", start_to_fire_timeout_s=2.0)),
        "gossip_mac": w.encode_gossip(
            w.GossipPacket(messages=[w.Ping(seq=9, target="n2")]), b"k" * 32),
        "repl_removed": w.encode_repl(w.Removed(shard=3, epoch=w.Epoch(2, "n1"), config_index=4)),
    }


VECTORS = {
    "start_request": (
        "a362696407626f706e73746172745f776f726b666c6f7764626f6479a96b776f726b666c6f775f69"
        "646477662d316d776f726b666c6f775f747970656547726565746a7461736b5f717565756561716a"
        "726571756573745f696462727165696e7075748141016f69645f72657573655f706f6c6963790164"
        "6d656d6fa0717365617263685f61747472696275746573a0686964656e7469747960"
    ),
    "error": (
        "a26269640363657272a364636f6465694e4f545f464f554e44676d657373616765706e6f20737563"
        "6820776f726b666c6f776764657461696c73a0"
    ),
    "child_event": (
        "a4686576656e745f6964056a6576656e745f74696d65fb3ff80000000000006a6576656e745f7479"
        "7065181f6a61747472696275746573a2616b181f6176a4696e616d6573706163656764656661756c"
        "7472696e697469617465645f6576656e745f69640472776f726b666c6f775f657865637574696f6e"
        "a26b776f726b666c6f775f696461636672756e5f696461726d776f726b666c6f775f747970656543"
        "68696c64"
    ),
    "command": (
        "a2616b18676176a26874696d65725f69646274317773746172745f746f5f666972655f74696d656f"
        "75745f73fb4000000000000000"
    ),
    "gossip_mac": (
        "11b6702f34df5879910ad50d08744e1c761a50f5571953e1ab8325599b36849c8481a2616b18c861"
        "76a2637365710966746172676574626e32"
    ),
    "repl_removed": (
        "a2616b1901356176a3657368617264036565706f6368a267636f756e74657202646e6f6465626e31"
        "6c636f6e6669675f696e64657804"
    ),
}


def test_every_message_encodes_to_the_bytes_of_the_single_module() -> None:
    got = {name: data.hex() for name, data in _samples().items()}
    assert got == VECTORS


def test_the_vectors_decode_back_to_equal_messages() -> None:
    samples = _samples()
    event = wire.loads(wire.HistoryEvent, samples["child_event"])
    assert event.attributes.workflow_execution.run_id == "r"
    req = wire.decode_request(samples["start_request"])
    body = wire.decode_body(req.op, req.body)
    assert body.workflow_type == "Greet" and body.input == [b"\x01"]
    packet = wire.decode_gossip(samples["gossip_mac"], b"k" * 32)
    assert packet.messages[0].target == "n2"
    assert wire.decode_repl(samples["repl_removed"]).config_index == 4


def test_the_package_re_exports_every_public_name_of_its_modules() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(wire.__path__):
        module = importlib.import_module(f"shoal.wire.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", module.__name__) != module.__name__:
                continue
            if isinstance(value, type) or callable(value):
                assert getattr(wire, name, None) is value, f"wire.{name} missing"
