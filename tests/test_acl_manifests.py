"""Goal: ACLs as manifests (`kind: Acl` for `sluice apply | diff | delete -f`), every topic a
transform writes covered by its deployer's rights, and the admin API's cached Basic logins
forgotten as soon as a user is deleted or changes password; method: a real broker with a
SASL_SSL listener and `--authorizer`, the real `sluice` CLI, and confluent-kafka clients as
alice, whose rights are exactly what the manifests grant."""

import json
import textwrap

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, ResourcePatternType,
                                   ResourceType, UserScramCredentialDeletion)

from helpers import sluice_env, sluice_expect, unique, wait_until
from test_acls import (ALICE, ALICE_PASSWORD, acl_broker, admin_call, admin_client, alice_conf,
                       all_acls, consume, create_alice, grant, group_acl, make_topic, produce_errors,
                       topic_acl)
from test_security import ADMIN_PASSWORD, ADMIN_USER, certs, client_conf  # noqa: F401
from transforms import multipart, plugin

TOPIC_AUTHORIZATION_FAILED = 29


def sluice(b, *args, expect=0, user=ADMIN_USER, password=ADMIN_PASSWORD):
    """`sluice ARGS` against the broker's admin API as `user`; (stdout lines, stderr)."""
    return sluice_expect(sluice_env(b, SLUICE_ADMIN_USER=user, SLUICE_ADMIN_PASSWORD=password), *args, expect=expect)


def acl_doc(name, topic, operations, principal=f"User:{ALICE}", extra=""):
    return textwrap.dedent(f"""\
        apiVersion: sluice/v1
        kind: Acl
        metadata:
          name: {name}
        spec:
          principal: {principal}
          resource: {{type: topic, name: {topic}}}
          operations: [{", ".join(operations)}]
        """) + extra


def test_acl_manifest_apply_diff_delete(broker_factory, certs, tmp_path):
    """Applying an Acl manifest lets alice produce to a topic she could not before; a second
    apply is `unchanged`; dropping an operation from the document revokes just that right;
    delete takes the access away. Bad values are refused at file:line:column with nothing done."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    topic, name = unique("acl-t"), unique("writers")
    make_topic(admin, topic)
    grant(admin, group_acl("g-acl"))
    assert produce_errors(alice_conf(b, certs), topic, n=2, timeout=10) == [TOPIC_AUTHORIZATION_FAILED] * 2

    path = tmp_path / "acl.yaml"
    path.write_text(acl_doc(name, topic, ["write", "read"]))
    assert sluice(b, "diff", "-f", path)[0] == [f"acl/{name} would be created"]
    assert all_acls(admin) == [group_acl("g-acl")], "diff changes nothing"
    assert sluice(b, "apply", "-f", path)[0] == [f"acl/{name} created"]
    assert produce_errors(alice_conf(b, certs), topic, n=3) == []
    values, errors = consume(alice_conf(b, certs), topic, "g-acl", want=3)
    assert (sorted(values), errors) == (["v0", "v1", "v2"], [])
    assert sluice(b, "apply", "-f", path)[0] == [f"acl/{name} unchanged"]
    # The same rights made through the Kafka API are what the manifest declared.
    assert topic_acl(topic, AclOperation.WRITE) in all_acls(admin)

    # Drop READ: an update that deletes exactly that binding.
    path.write_text(acl_doc(name, topic, ["write"]))
    out = sluice(b, "apply", "-f", path)[0]
    assert out == [f"acl/{name} updated (- Allow User:{ALICE} READ on TOPIC \"{topic}\")"], out
    assert topic_acl(topic, AclOperation.READ) not in all_acls(admin)
    assert topic_acl(topic, AclOperation.WRITE) in all_acls(admin)
    assert produce_errors(alice_conf(b, certs), topic, n=1) == []

    assert sluice(b, "delete", "-f", path)[0] == [f"acl/{name} deleted"]
    assert all_acls(admin) == [group_acl("g-acl")]
    assert produce_errors(alice_conf(b, certs), topic, n=1, timeout=10) == [TOPIC_AUTHORIZATION_FAILED]
    assert sluice(b, "delete", "-f", path)[0] == [f"acl/{name} absent"]

    # Every wrong value at its own position; nothing applied.
    bad = tmp_path / "bad.yaml"
    bad.write_text(acl_doc("bad", topic, ["write", "fly"], principal="alice",
                           extra="  host: example.com\n  permission: perhaps\n"))
    _, err = sluice(b, "apply", "-f", bad, expect=1)
    for want in [f"{bad}:6:14: spec.principal: \"alice\" is not Type:name",
                 "spec.operations[1]: unknown operation \"fly\"",
                 f"{bad}:9:9: spec.host: \"example.com\" is neither * nor an IP address",
                 f"{bad}:10:15: spec.permission: unknown value \"perhaps\""]:
        assert want in err, f"{want!r} not in\n{err}"
    assert all_acls(admin) == [group_acl("g-acl")]

    # alice may not manage ACLs herself (ALTER on the cluster), through a manifest or otherwise.
    _, err = sluice(b, "apply", "-f", path, expect=1, user=ALICE, password=ALICE_PASSWORD)
    assert f"User:{ALICE} may not DESCRIBE CLUSTER" in err, err
    assert all_acls(admin) == [group_acl("g-acl")]


def test_acl_manifest_needs_an_authorizer(broker_factory, certs, tmp_path):
    """Without --authorizer an Acl document is refused with a message saying why, and the
    broker's other manifests still apply."""
    from test_security import secure_broker
    b = secure_broker(broker_factory, certs)
    path = tmp_path / "acl.yaml"
    path.write_text(acl_doc("x", "t", ["read"]))
    _, err = sluice(b, "apply", "-f", path, expect=1)
    assert "--authorizer" in err, err


def test_transform_deploy_covers_named_outputs_and_state(broker_factory, certs):
    """alice's deploy needs WRITE on every named output and on a stateful module's changelog;
    and with the authorizer on, a transform routing a record to a topic it did not declare
    halts instead of writing there."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    inp, out, secret, name = unique("in"), unique("out"), unique("secret"), unique("rt")
    for t in (inp, out, secret):
        make_topic(admin, t)
    grant(admin, topic_acl(inp, AclOperation.READ), topic_acl(out, AclOperation.WRITE),
          topic_acl(f"{name}.dlq", AclOperation.WRITE))
    router = {"routes": [{"contains": "v", "topic": secret}]}
    spec = {"name": name, "input": inp, "output": out, "config": router, "named_outputs": [secret]}

    def deploy(s, module="router", user=ALICE, password=ALICE_PASSWORD):
        body, ctype = multipart(s, plugin(module))
        return admin_call(b, "POST", "/v1/transforms", user, password, body, ctype)

    status, text, _ = deploy(spec)
    assert status == 403 and secret.encode() in text and b"WRITE" in text, (status, text)

    # Not declaring the routed topic gets the deploy through, and the records nowhere.
    undeclared = {k: v for k, v in spec.items() if k != "named_outputs"}
    status, text, _ = deploy(undeclared)
    assert status == 200, (status, text)
    assert produce_errors(client_conf(b, certs), inp, n=2) == []

    def state():
        return json.loads(admin_call(b, "GET", f"/v1/transforms/{name}", ADMIN_USER, ADMIN_PASSWORD)[1])

    wait_until(lambda: state()["state"] == "failed", 60, message="the transform halts")
    assert secret in state()["reason"] and "named_outputs" in state()["reason"], state()
    values, _ = consume(client_conf(b, certs), secret, unique("g"), want=1, timeout=5)
    assert values == [], values

    # A stateful module also writes its changelog: that needs WRITE too.
    stateful = unique("sess")
    grant(admin, topic_acl(f"{stateful}.dlq", AclOperation.WRITE))
    s2 = {"name": stateful, "input": inp, "output": out}
    status, text, _ = deploy(s2, module="sessionize")
    assert status == 403 and f"_sluice_state.{stateful}".encode() in text, (status, text)
    grant(admin, topic_acl(f"_sluice_state.{stateful}", AclOperation.WRITE))
    status, text, _ = deploy(s2, module="sessionize")
    assert status == 200, (status, text)


def test_admin_login_cache_forgets_deleted_and_changed_users(broker_factory, certs):
    """A cached Basic login stops working the moment the user is deleted, and an old password
    the moment it is changed; the new one works at once."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    grant(admin, AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, f"User:{ALICE}", "*",
                            AclOperation.DESCRIBE, AclPermissionType.ALLOW))
    for _ in range(3):  # the first verifies with PBKDF2, the others hit the cache
        assert admin_call(b, "GET", "/v1/manifests", ALICE, ALICE_PASSWORD)[0] == 200

    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    new_password = "alice-pw-8"
    upsert = UserScramCredentialUpsertion(ALICE, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), new_password.encode())
    for f in admin.alter_user_scram_credentials([upsert]).values():
        f.result(timeout=30)
    assert admin_call(b, "GET", "/v1/manifests", ALICE, ALICE_PASSWORD)[0] == 401
    assert admin_call(b, "GET", "/v1/manifests", ALICE, new_password)[0] == 200

    deletion = UserScramCredentialDeletion(ALICE, ScramMechanism.SCRAM_SHA_512)
    for f in admin.alter_user_scram_credentials([deletion]).values():
        f.result(timeout=30)
    assert admin_call(b, "GET", "/v1/manifests", ALICE, new_password)[0] == 401
