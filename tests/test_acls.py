"""ACLs (Kafka's model) against real clients: confluent-kafka's AdminClient manages them
(CreateAcls / DescribeAcls / DeleteAcls), producers and consumers are refused or served by them,
and Debian's kcat over SASL_SSL sees the same decisions.

Each test starts a broker with a PLAINTEXT listener first (conftest's `kafka=`; its
`User:ANONYMOUS` gets nothing once the authorizer is on), a SASL_SSL listener `SECURE`, the
bootstrap super-user `admin`, and `--authorizer`.
"""

import base64
import http.client
import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType,
                                   ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)

import kafka.errors
from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, ResourcePatternFilter)
from kafka.admin import ResourceType as KResourceType

from helpers import unique
from transforms import multipart, plugin
from test_security import ADMIN_PASSWORD, ADMIN_USER, certs, client_conf, secure_broker  # noqa: F401

ALICE, ALICE_PASSWORD = "alice", "alice-pw-7"
LITERAL, PREFIXED = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY


def acl_broker(broker_factory, certs, extra=()):
    return secure_broker(broker_factory, certs, extra=["--authorizer", *extra])


def admin_client(b, certs):
    return AdminClient(client_conf(b, certs))


def alice_conf(b, certs, **extra):
    return client_conf(b, certs, user=ALICE, password=ALICE_PASSWORD, **extra)


def create_alice(admin):
    upsert = UserScramCredentialUpsertion(ALICE, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                          ALICE_PASSWORD.encode())
    for f in admin.alter_user_scram_credentials([upsert]).values():
        f.result(timeout=30)


def grant(admin, *bindings):
    for f in admin.create_acls(list(bindings)).values():
        f.result(timeout=30)


def topic_acl(name, op, permission=ALLOW, pattern=LITERAL, principal=f"User:{ALICE}", host="*"):
    return AclBinding(ResourceType.TOPIC, name, pattern, principal, host, op, permission)


def group_acl(name, op=AclOperation.READ, permission=ALLOW, pattern=LITERAL, principal=f"User:{ALICE}"):
    return AclBinding(ResourceType.GROUP, name, pattern, principal, "*", op, permission)


def make_topic(admin, name, partitions=1):
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(timeout=30)


def all_acls(admin):
    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    return sorted(admin.describe_acls(any_filter).result(timeout=30), key=str)


def produce_errors(conf, topic, n=3, timeout=30):
    """Produces n records; returns the list of delivery error codes (empty when all succeed)."""
    errors, delivered = [], []
    p = Producer({**conf, "message.timeout.ms": timeout * 1000, "acks": "all"})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(),
                  on_delivery=lambda e, m: errors.append(e.code()) if e else delivered.append(m))
    p.flush(timeout + 10)
    assert len(errors) + len(delivered) == n, "every record gets a delivery report"
    return errors


def consume(conf, topic, group, want, timeout=30):
    """Reads from `topic` in `group` until `want` values or an error; returns (values, error codes)."""
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    values, errors = [], []
    deadline = time.monotonic() + timeout
    while len(values) < want and not errors and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(m.error().code())
        else:
            values.append(m.value().decode())
    if not errors and values:
        c.commit(asynchronous=False)
    c.close()
    return values, errors


# ---------------------------------------------------------------- the ACL APIs

def test_acl_apis_roundtrip_and_survive_restart_and_kill9(broker_factory, certs):
    """create_acls / describe_acls (ANY, exact and MATCH filters) / delete_acls through
    confluent-kafka; the set survives a graceful restart and a kill -9 (metadata log)."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    created = [
        topic_acl("orders", AclOperation.READ),
        topic_acl("orders-", AclOperation.WRITE, pattern=PREFIXED),
        topic_acl("orders-secret", AclOperation.WRITE, DENY),
        group_acl("billing"),
        AclBinding(ResourceType.BROKER, "kafka-cluster", LITERAL, "User:bob", "127.0.0.1",
                   AclOperation.DESCRIBE, ALLOW),
    ]
    grant(admin, *created)
    grant(admin, created[0])  # creating an existing binding again is a no-op success
    assert all_acls(admin) == sorted(created, key=str)

    exact = AclBindingFilter(ResourceType.TOPIC, "orders", LITERAL, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    assert admin.describe_acls(exact).result(timeout=30) == [created[0]]
    match = AclBindingFilter(ResourceType.TOPIC, "orders-secret", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert sorted(admin.describe_acls(match).result(timeout=30), key=str) == sorted(created[1:3], key=str)

    deny_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                   AclOperation.ANY, DENY)
    deleted = admin.delete_acls([deny_filter])[deny_filter].result(timeout=30)
    assert deleted == [created[2]]
    remaining = sorted(created[:2] + created[3:], key=str)
    assert all_acls(admin) == remaining

    b.restart()
    assert all_acls(admin_client(b, certs)) == remaining
    b.kill9()
    b.start()
    assert all_acls(admin_client(b, certs)) == remaining


def test_acl_apis_need_cluster_alter_and_an_authorizer(broker_factory, certs):
    """A principal without ALTER on the cluster gets CLUSTER_AUTHORIZATION_FAILED; a broker
    without --authorizer answers SECURITY_DISABLED, as Kafka does without authorizer.class.name."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    alice = AdminClient(alice_conf(b, certs))
    with pytest.raises(KafkaException) as refused:
        grant(alice, topic_acl("x", AclOperation.READ))
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # confluent-kafka's describe_acls drops DescribeAcls' top-level error (it returns []), so
    # kafka-python shows the refusal, here as PLAINTEXT's User:ANONYMOUS.
    anonymous = KafkaAdminClient(bootstrap_servers=b.kafka)
    with pytest.raises(kafka.errors.ClusterAuthorizationFailedError):
        anonymous.describe_acls(ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                                          permission_type=ACLPermissionType.ANY,
                                          resource_pattern=ResourcePatternFilter(KResourceType.ANY, None,
                                                                                 ACLResourcePatternType.ANY)))
    anonymous.close()
    # Granted ALTER + DESCRIBE on the cluster, alice manages ACLs herself.
    cluster = lambda op: AclBinding(ResourceType.BROKER, "kafka-cluster", LITERAL, f"User:{ALICE}", "*", op, ALLOW)
    grant(admin, cluster(AclOperation.ALTER), cluster(AclOperation.DESCRIBE))
    grant(alice, topic_acl("x", AclOperation.READ))
    assert topic_acl("x", AclOperation.READ) in all_acls(alice)

    plain = secure_broker(broker_factory, certs)
    with pytest.raises(KafkaException) as disabled:
        grant(admin_client(plain, certs), topic_acl("x", AclOperation.READ))
    assert disabled.value.args[0].code() == KafkaError.SECURITY_DISABLED


def test_invalid_acls_are_refused(broker_factory, certs):
    """Bad bindings (a host that is not an IP, an operation the resource type lacks) are refused
    with INVALID_REQUEST and nothing is stored."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    bad_host = topic_acl("t", AclOperation.READ, host="example.com")
    bad_op = group_acl("g", AclOperation.WRITE)
    for bad in (bad_host, bad_op):
        with pytest.raises(KafkaException) as refused:
            grant(admin, bad)
        assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST, refused.value
    assert all_acls(admin) == []


# ---------------------------------------------------------------- enforcement

def test_principal_without_acls_sees_and_writes_nothing_until_granted(broker_factory, certs):
    """alice (SCRAM, no ACLs): metadata hides every topic, produce gets TOPIC_AUTHORIZATION_FAILED,
    consume gets GROUP_ then TOPIC_AUTHORIZATION_FAILED; after WRITE/READ grants both work.
    ANONYMOUS on the PLAINTEXT listener sees nothing either."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    topic, group = unique("acl"), unique("g")
    make_topic(admin, topic)
    assert produce_errors(client_conf(b, certs), topic) == [], "the super-user writes"

    alice = alice_conf(b, certs)
    assert topic not in AdminClient(alice).list_topics(timeout=10).topics
    assert AdminClient({"bootstrap.servers": b.kafka}).list_topics(timeout=10).topics == {}
    assert set(produce_errors(alice, topic, timeout=15)) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
    values, errors = consume(alice, topic, group, want=3, timeout=20)
    assert values == [] and errors and errors[0] in (KafkaError.GROUP_AUTHORIZATION_FAILED,
                                                     KafkaError.TOPIC_AUTHORIZATION_FAILED), errors

    # READ on the group but not the topic: the topic is refused.
    grant(admin, group_acl(group))
    values, errors = consume(alice, topic, group, want=3, timeout=20)
    assert values == [] and errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors

    grant(admin, topic_acl(topic, AclOperation.WRITE), topic_acl(topic, AclOperation.READ))
    assert topic in AdminClient(alice).list_topics(timeout=10).topics, "WRITE/READ imply DESCRIBE"
    assert produce_errors(alice, topic) == []
    values, errors = consume(alice, topic, group, want=6)
    assert errors == [] and values == [f"v{i}" for i in range(3)] * 2

    # A second group without ACLs is still refused, with the group's error.
    values, errors = consume(alice, topic, unique("other"), want=1, timeout=20)
    assert values == [] and errors == [KafkaError.GROUP_AUTHORIZATION_FAILED], errors


def test_deny_overrides_allow(broker_factory, certs):
    """ALLOW READ on every topic (literal `*`) plus DENY READ on prefix `secret`: alice reads
    `public…` but not `secret…`; the DENY of READ does not deny DESCRIBE (she still sees it)."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    public, secret = unique("public"), unique("secret")
    for t in (public, secret):
        make_topic(admin, t)
        assert produce_errors(client_conf(b, certs), t, n=2) == []
    grant(admin, topic_acl("*", AclOperation.READ), topic_acl("secret", AclOperation.READ, DENY, PREFIXED),
          group_acl("*"))
    alice = alice_conf(b, certs)
    values, errors = consume(alice, public, unique("g"), want=2)
    assert (values, errors) == (["v0", "v1"], [])
    values, errors = consume(alice, secret, unique("g"), want=2, timeout=20)
    assert values == [] and errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors
    topics = AdminClient(alice).list_topics(timeout=10).topics
    assert public in topics and secret in topics
    # Metadata's authorized operations (what describe_topics reports) follow the same ACLs.
    alice_admin = AdminClient(alice)  # kept alive until the futures resolve
    described = alice_admin.describe_topics(TopicCollection([public, secret]), include_authorized_operations=True)
    ops = {t: set(f.result(timeout=30).authorized_operations) for t, f in described.items()}
    assert ops[public] == {AclOperation.READ, AclOperation.DESCRIBE}, ops
    assert ops[secret] == {AclOperation.DESCRIBE}, ops
    # An ALL deny for everyone beats alice's own allow.
    grant(admin, topic_acl(public, AclOperation.ALL, DENY, principal="User:*"))
    values, errors = consume(alice, public, unique("g"), want=2, timeout=20)
    assert values == [] and errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors


def test_prefixed_patterns_and_create(broker_factory, certs):
    """WRITE + CREATE on prefix `team-a.` lets alice auto-create and write `team-a.*` topics;
    `team-b.*` is refused and not created; CreateTopics outside the prefix is refused."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    grant(admin, topic_acl("team-a.", AclOperation.WRITE, pattern=PREFIXED),
          topic_acl("team-a.", AclOperation.CREATE, pattern=PREFIXED))
    alice = alice_conf(b, certs)
    mine, theirs = f"team-a.{unique('x')}", f"team-b.{unique('x')}"
    assert produce_errors(alice, mine) == []
    assert set(produce_errors(alice, theirs, timeout=15)) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
    assert theirs not in admin.list_topics(timeout=10).topics, "not auto-created"
    alice_admin = AdminClient(alice)
    make_topic(alice_admin, f"team-a.{unique('made')}")
    with pytest.raises(KafkaException) as refused:
        make_topic(alice_admin, f"team-b.{unique('made')}")
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_allow_everyone_if_no_acl_found(broker_factory, certs):
    """With --allow-everyone-if-no-acl-found true, resources no ACL names are open, and naming
    one in an ACL closes it to everyone else."""
    b = acl_broker(broker_factory, certs, extra=["--allow-everyone-if-no-acl-found", "true"])
    admin = admin_client(b, certs)
    create_alice(admin)
    open_topic, closed_topic = unique("open"), unique("closed")
    make_topic(admin, open_topic)
    make_topic(admin, closed_topic)
    grant(admin, topic_acl(closed_topic, AclOperation.WRITE, principal="User:bob"))
    alice = alice_conf(b, certs)
    assert produce_errors(alice, open_topic) == []
    assert set(produce_errors(alice, closed_topic, timeout=15)) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}


def test_kcat_sasl_ssl_with_acls(broker_factory, certs):
    """Debian's kcat (librdkafka 2.0.2) as alice over SASL_SSL: refused without ACLs, then
    produces and consumes after WRITE/READ grants."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    topic, group = unique("kcat"), unique("kg")
    make_topic(admin, topic)
    common = ["kcat", "-b", b.listeners["SECURE"], "-X", "security.protocol=SASL_SSL",
              "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={ALICE}",
              "-X", f"sasl.password={ALICE_PASSWORD}", "-X", f"ssl.ca.location={certs / 'ca.crt'}"]
    lines = [f"line-{i}" for i in range(10)]
    refused = subprocess.run(common + ["-P", "-t", topic, "-X", "message.timeout.ms=10000"],
                             input="\n".join(lines) + "\n", text=True, capture_output=True, timeout=60)
    assert "authoriz" in refused.stderr.lower(), refused.stderr
    grant(admin, topic_acl(topic, AclOperation.WRITE), topic_acl(topic, AclOperation.READ), group_acl(group))
    subprocess.run(common + ["-P", "-t", topic], input="\n".join(lines) + "\n", text=True, check=True, timeout=60)
    out = subprocess.run(common + ["-X", "auto.offset.reset=earliest", "-G", group, topic, "-c", "10"],
                         capture_output=True, text=True, timeout=90)
    assert out.stdout.split() == lines, out.stderr


# ---------------------------------------------------------------- admin HTTP API

def admin_call(b, method, path, user=None, password=None, body=None, content_type=None):
    """(status, body bytes, headers) of an admin API call, with Basic credentials if given."""
    headers = {"Content-Type": content_type} if content_type else {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"http://{b.admin}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def test_admin_http_requires_scram_credentials_on_a_sasl_broker(broker_factory, certs):
    """With a SASL listener, admin routes answer 401 without or with wrong Basic credentials and
    200 with a SCRAM user's; /healthz and /readyz stay open; /metrics too unless
    --admin-metrics-public false."""
    b = secure_broker(broker_factory, certs)
    status, _, headers = admin_call(b, "GET", "/v1/cluster")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), status
    assert admin_call(b, "GET", "/v1/cluster", ADMIN_USER, "wrong-password")[0] == 401
    assert admin_call(b, "GET", "/v1/cluster", "nobody", ADMIN_PASSWORD)[0] == 401
    status, body, _ = admin_call(b, "GET", "/v1/cluster", ADMIN_USER, ADMIN_PASSWORD)
    assert status == 200 and json.loads(body)["listeners"], body
    assert admin_call(b, "GET", "/v1/transforms")[0] == 401
    assert admin_call(b, "GET", "/v1/transforms", ADMIN_USER, ADMIN_PASSWORD)[0] == 200
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert admin_call(b, "GET", open_path)[0] == 200, open_path

    closed = secure_broker(broker_factory, certs, extra=["--admin-metrics-public", "false"])
    assert admin_call(closed, "GET", "/metrics")[0] == 401
    assert admin_call(closed, "GET", "/metrics", ADMIN_USER, ADMIN_PASSWORD)[0] == 200
    assert admin_call(closed, "GET", "/healthz")[0] == 200

    # A PLAINTEXT-only broker keeps its admin API open, as before.
    plain = broker_factory()
    assert admin_call(plain, "GET", "/v1/cluster")[0] == 200


def test_transform_deploy_needs_topic_rights_when_the_authorizer_is_on(broker_factory, certs):
    """alice may deploy a transform only with READ on its input and WRITE on its output and
    dead-letter topic; deleting needs the same rights; the super-user may always."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    inp, out, name = unique("in"), unique("out"), unique("tf")
    make_topic(admin, inp)
    make_topic(admin, out)
    body, ctype = multipart({"name": name, "input": inp, "output": out}, plugin("uppercase"))
    status, text, _ = admin_call(b, "POST", "/v1/transforms", ALICE, ALICE_PASSWORD, body, ctype)
    assert status == 403 and b"READ" in text, (status, text)
    grant(admin, topic_acl(inp, AclOperation.READ))
    status, text, _ = admin_call(b, "POST", "/v1/transforms", ALICE, ALICE_PASSWORD, body, ctype)
    assert status == 403 and b"WRITE" in text, (status, text)
    grant(admin, topic_acl(out, AclOperation.WRITE))
    # The default error policy dead-letters to `<name>.dlq`: an output too.
    status, text, _ = admin_call(b, "POST", "/v1/transforms", ALICE, ALICE_PASSWORD, body, ctype)
    assert status == 403 and f"{name}.dlq".encode() in text, (status, text)
    grant(admin, topic_acl(f"{name}.dlq", AclOperation.WRITE))
    status, text, _ = admin_call(b, "POST", "/v1/transforms", ALICE, ALICE_PASSWORD, body, ctype)
    assert status == 200, (status, text)

    # Records flow through it (the runner is the broker itself, not alice).
    assert produce_errors(client_conf(b, certs), inp, n=3) == []
    grant(admin, topic_acl(out, AclOperation.READ), group_acl("reader"))
    values, errors = consume(alice_conf(b, certs), out, "reader", want=3, timeout=60)
    assert (sorted(values), errors) == (["V0", "V1", "V2"], [])

    delete = lambda who, pw: admin_call(b, "DELETE", f"/v1/transforms/{name}", who, pw)[0]
    revoke = AclBindingFilter(ResourceType.TOPIC, inp, LITERAL, None, None, AclOperation.ANY, AclPermissionType.ANY)
    admin.delete_acls([revoke])[revoke].result(timeout=30)
    assert delete(ALICE, ALICE_PASSWORD) == 403
    assert delete(ADMIN_USER, ADMIN_PASSWORD) == 204


def test_admin_http_over_tls(broker_factory, certs):
    """--admin-tls serves the admin API over HTTPS with the listeners' certificate: a client that
    trusts the CA gets 200 with credentials and 401 without; plain HTTP gets no answer."""
    import ssl
    b = secure_broker(broker_factory, certs, extra=["--admin-tls"])
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))

    def https(path, creds=None):
        headers = {}
        if creds:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(creds).encode()).decode()
        req = urllib.request.Request(f"https://{b.admin}{path}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert https("/healthz") == 200
    assert https("/v1/cluster") == 401
    assert https("/v1/cluster", (ADMIN_USER, ADMIN_PASSWORD)) == 200
    # Plain HTTP gets a TLS alert (or a closed connection), never an HTTP answer.
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
        urllib.request.urlopen(f"http://{b.admin}/healthz", timeout=10).read()
    untrusting = ssl.create_default_context(cafile=str(certs / "rogue-ca.crt"))
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"https://{b.admin}/healthz", timeout=10, context=untrusting)


def test_admin_topic_group_and_manifest_routes_check_acls(broker_factory, certs):
    """The admin API's topic, group and manifest routes apply the same ACL rules as the Kafka APIs
    that do the same thing: alice sees only topics she may describe, needs CREATE to create,
    ALTER_CONFIGS / ALTER / DELETE to change one, DESCRIBE on a group to see it, and cluster
    ALTER to store manifests; the super-user may do everything."""
    b = acl_broker(broker_factory, certs)
    admin = admin_client(b, certs)
    create_alice(admin)
    hidden, mine = unique("hidden"), unique("mine")
    make_topic(admin, hidden)

    def call(method, path, body=None, user=ALICE, password=ALICE_PASSWORD):
        data = json.dumps(body).encode() if body is not None else None
        status, text, _ = admin_call(b, method, path, user, password, data, "application/json" if data else None)
        return status, (json.loads(text) if text else None)

    status, listed = call("GET", "/v1/topics")
    assert status == 200 and hidden not in [t["name"] for t in listed], listed
    assert call("GET", f"/v1/topics/{hidden}")[0] == 403
    status, err = call("POST", "/v1/topics", {"name": mine, "partitions": 1})
    assert status == 403 and err["error"] == "forbidden", err
    grant(admin, topic_acl(mine, AclOperation.CREATE), topic_acl(mine, AclOperation.DESCRIBE))
    assert call("POST", "/v1/topics", {"name": mine, "partitions": 1})[0] == 201
    assert mine in [t["name"] for t in call("GET", "/v1/topics")[1]]
    assert call("PATCH", f"/v1/topics/{mine}", {"configs": {"retention.ms": "60000"}})[0] == 403
    assert call("PATCH", f"/v1/topics/{mine}", {"partitions": 2})[0] == 403
    assert call("DELETE", f"/v1/topics/{mine}")[0] == 403
    grant(admin, topic_acl(mine, AclOperation.ALTER_CONFIGS), topic_acl(mine, AclOperation.ALTER),
          topic_acl(mine, AclOperation.DELETE))
    assert call("PATCH", f"/v1/topics/{mine}", {"configs": {"retention.ms": "60000"}, "partitions": 2})[0] == 200
    assert call("DELETE", f"/v1/topics/{mine}")[0] == 204
    assert call("GET", f"/v1/groups/{unique('g')}")[0] == 403
    doc = {"apiVersion": "sluice/v1", "kind": "Topic", "metadata": {"name": "x"}, "spec": {}}
    assert call("PUT", "/v1/manifests/Topic/x", doc)[0] == 403
    assert call("GET", "/v1/manifests")[0] == 403
    # The super-user passes every check.
    assert call("GET", f"/v1/topics/{hidden}", user=ADMIN_USER, password=ADMIN_PASSWORD)[0] == 200
    assert call("PUT", "/v1/manifests/Topic/x", doc, user=ADMIN_USER, password=ADMIN_PASSWORD)[0] == 200
