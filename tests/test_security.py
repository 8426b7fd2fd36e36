"""Listeners, TLS and SASL against real clients (confluent-kafka, kcat) and hand-built frames.

Certificates are generated per test session with the `openssl` CLI into a temp dir (no private
key is ever committed). Each test starts its own broker with a PLAINTEXT listener first (so the
conftest's `kafka=` stays usable) plus the secured listener(s) under test.
"""

import os
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from helpers import create_topic, unique, wait_until, watermarks
from kafka_wire import ConnectionClosed, RawConn, parse_produce_first_partition, record_batch, string

ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-secret-1"

API_PRODUCE = 0
API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
SASL_AUTHENTICATION_FAILED = 58


# ---------------------------------------------------------------- certificates

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _make_leaf(d, ca, name, usage):
    (d / f"{name}.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        f"keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """ca (trusted), server (signed by ca), client (signed by ca), rogue-ca and rogue-server."""
    d = tmp_path_factory.mktemp("certs")
    _make_ca(d, "ca")
    _make_ca(d, "rogue-ca")
    _make_leaf(d, "ca", "server", "serverAuth")
    _make_leaf(d, "ca", "client", "clientAuth")
    _make_leaf(d, "rogue-ca", "rogue-server", "serverAuth")
    return d


def tls_args(certs, cert="server"):
    return ["--tls-cert-file", str(certs / f"{cert}.crt"), "--tls-key-file", str(certs / f"{cert}.key")]


def sasl_env():
    return {"SLUICE_SASL_BOOTSTRAP_USER": ADMIN_USER, "SLUICE_SASL_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD}


def secure_broker(broker_factory, certs, protocol="SASL_SSL", extra=()):
    """PLAINTEXT first (conftest's `kafka=`), then `SECURE` with `protocol`."""
    args = ["--listener", "PLAINTEXT=PLAINTEXT://127.0.0.1:0",
            "--listener", f"SECURE={protocol}://127.0.0.1:0", *tls_args(certs), *extra]
    b = broker_factory(args=args, env=sasl_env())
    b.admin_credentials = (ADMIN_USER, ADMIN_PASSWORD)  # the admin API requires them on a SASL broker
    return b


def client_conf(broker, certs, mechanism="SCRAM-SHA-512", user=ADMIN_USER, password=ADMIN_PASSWORD,
                protocol="SASL_SSL", ca="ca", **extra):
    conf = {"bootstrap.servers": broker.listeners["SECURE"], "security.protocol": protocol}
    if "SSL" in protocol:
        conf["ssl.ca.location"] = str(certs / f"{ca}.crt")
    if "SASL" in protocol:
        conf.update({"sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password})
    conf.update(extra)
    return conf


def produce_and_consume(conf, n=50):
    """Produces n records through `conf` and reads them back; returns the values read."""
    topic = unique("sec")
    errors = []
    p = Producer({**conf, "acks": "all"})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(60) == 0, "undelivered records"
    assert not errors, errors
    c = Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    c.close()
    assert got == [f"v{i}" for i in range(n)]
    return got


def auth_error(conf):
    """Lists topics through `conf`; returns the most telling KafkaError the client reports (an
    authentication error if there is one), or None if listing works."""
    errors = []
    a = AdminClient({**conf, "error_cb": errors.append, "socket.timeout.ms": 10000})
    try:
        a.list_topics(timeout=10)
    except KafkaException as e:
        errors.append(e.args[0])
        a.poll(1)  # serve error_cb: librdkafka reports the authentication error there
    else:
        return None
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    return auth[0] if auth else errors[0]


# ---------------------------------------------------------------- raw SASL frames

def sasl_handshake(conn, mechanism, version=1):
    corr = conn.send_request(API_SASL_HANDSHAKE, version, string(mechanism))
    body = conn.recv_response(corr)
    (error,) = struct.unpack_from(">h", body, 0)
    return error


def sasl_authenticate(conn, token, version=0):
    corr = conn.send_request(API_SASL_AUTHENTICATE, version, struct.pack(">i", len(token)) + token)
    body = conn.recv_response(corr)
    error, msg_len = struct.unpack_from(">hh", body, 0)
    message = body[4:4 + msg_len].decode() if msg_len >= 0 else None
    return error, message


def metadata_request(conn):
    corr = conn.send_request(API_METADATA, 1, struct.pack(">i", -1))
    return conn.recv_response(corr)


def tls_socket(addr, certs, ca="ca"):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(certs / f"{ca}.crt"))
    raw = socket.create_connection((host, int(port)), timeout=15)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


# ---------------------------------------------------------------- tests

def test_listeners_in_ready_line_and_cluster_info(broker_factory, certs):
    """Every listener's bound address is in the ready line and /v1/cluster; kafa= is the first."""
    b = secure_broker(broker_factory, certs)
    assert set(b.listeners) == {"PLAINTEXT", "SECURE"}
    assert b.kafka == b.listeners["PLAINTEXT"]
    info = b.cluster_info()
    by_name = {l["name"]: l for l in info["listeners"]}
    assert by_name["SECURE"]["addr"] == b.listeners["SECURE"]
    assert by_name["SECURE"]["security_protocol"] == "SASL_SSL"
    assert info["kafka_addr"] == b.kafka


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_confluent_sasl_ssl_produce_consume(broker_factory, certs, mechanism):
    """confluent-kafka over SASL_SSL with each mechanism: produce and consume through the
    secured listener; Metadata must advertise that listener (the client reconnects to it)."""
    b = secure_broker(broker_factory, certs)
    conf = client_conf(b, certs, mechanism=mechanism)
    produce_and_consume(conf)
    md = AdminClient(conf).list_topics(timeout=10)
    ports = {br.port for br in md.brokers.values()}
    assert ports == {int(b.listeners["SECURE"].rsplit(":", 1)[1])}, "advertises the SASL_SSL listener"
    # The PLAINTEXT listener advertises itself to its own clients.
    md = AdminClient({"bootstrap.servers": b.kafka}).list_topics(timeout=10)
    assert {br.port for br in md.brokers.values()} == {int(b.kafka.rsplit(":", 1)[1])}


def test_confluent_ssl_listener(broker_factory, certs):
    """An SSL listener (TLS, no SASL) serves a client that trusts the server's CA."""
    b = secure_broker(broker_factory, certs, protocol="SSL")
    produce_and_consume(client_conf(b, certs, protocol="SSL"))


def test_sasl_plaintext_scram(broker_factory, certs):
    """SASL_PLAINTEXT (SCRAM without TLS) works too."""
    b = secure_broker(broker_factory, certs, protocol="SASL_PLAINTEXT")
    produce_and_consume(client_conf(b, certs, protocol="SASL_PLAINTEXT"), n=10)


def test_wrong_password_is_refused(broker_factory, certs):
    """A wrong password fails with SASL_AUTHENTICATION_FAILED, for confluent-kafka (SCRAM and
    PLAIN) and on the wire; the broker keeps serving the right password."""
    b = secure_broker(broker_factory, certs)
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        err = auth_error(client_conf(b, certs, mechanism=mechanism, password="wrong"))
        assert err is not None and err.code() == KafkaError._AUTHENTICATION, err
        assert "invalid credentials" in err.str().lower(), err.str()
    with RawConn(b.listeners["SECURE"], sock=tls_socket(b.listeners["SECURE"], certs)) as conn:
        assert sasl_handshake(conn, "PLAIN") == 0
        error, message = sasl_authenticate(conn, b"\0admin\0not-the-password")
        assert error == SASL_AUTHENTICATION_FAILED, (error, message)
        assert conn.wait_closed(), "the connection closes after a failed authentication"
    assert auth_error(client_conf(b, certs)) is None


def test_untrusted_server_certificate_is_refused(broker_factory, certs):
    """A client that does not trust the server's CA cannot connect; one that does can."""
    b = secure_broker(broker_factory, certs)
    err = auth_error(client_conf(b, certs, ca="rogue-ca"))
    assert err is not None and err.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._TIMED_OUT,
                                              KafkaError._ALL_BROKERS_DOWN), err
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_socket(b.listeners["SECURE"], certs, ca="rogue-ca")
    assert auth_error(client_conf(b, certs)) is None


def test_client_certificate_required(broker_factory, certs):
    """With client_auth required, a TLS client without a certificate is refused and one with a
    certificate signed by the client CA is served."""
    b = secure_broker(broker_factory, certs, protocol="SSL",
                      extra=["--tls-client-ca-file", str(certs / "ca.crt"), "--tls-client-auth", "required"])
    assert auth_error(client_conf(b, certs, protocol="SSL")) is not None
    with_cert = client_conf(b, certs, protocol="SSL", **{"ssl.certificate.location": str(certs / "client.crt"),
                                                          "ssl.key.location": str(certs / "client.key")})
    produce_and_consume(with_cert, n=5)


def test_unauthenticated_client_only_gets_sasl_apis(broker_factory, certs):
    """On a SASL listener, before authentication: ApiVersions and SaslHandshake are answered,
    Metadata closes the connection; after SaslHandshake only SaslAuthenticate is allowed. A
    PLAINTEXT-configured client cannot use the listener at all."""
    b = secure_broker(broker_factory, certs, protocol="SASL_PLAINTEXT")
    addr = b.listeners["SECURE"]
    with RawConn(addr) as conn:
        assert conn.api_versions()[API_SASL_HANDSHAKE] == (0, 1)
        conn.send_request(API_METADATA, 1, struct.pack(">i", -1))
        assert conn.wait_closed(), "Metadata before SASL must close the connection"
    with RawConn(addr) as conn:
        assert sasl_handshake(conn, "SCRAM-SHA-512") == 0
        conn.send_request(API_METADATA, 1, struct.pack(">i", -1))
        assert conn.wait_closed()
    with RawConn(addr) as conn:
        assert sasl_handshake(conn, "GSSAPI") == 33  # UNSUPPORTED_SASL_MECHANISM
    with RawConn(addr) as conn:  # handshake v1 + SaslAuthenticate v2 (flexible) with PLAIN
        assert sasl_handshake(conn, "PLAIN") == 0
        token = f"\0{ADMIN_USER}\0{ADMIN_PASSWORD}".encode()
        from kafka_wire import uvarint
        corr = conn.send_request(API_SASL_AUTHENTICATE, 2, uvarint(len(token) + 1) + token + b"\0", flexible=True)
        body = conn.recv_response(corr, flexible_header=True)
        assert struct.unpack_from(">h", body, 0)[0] == 0
        assert len(metadata_request(conn)) > 0, "authenticated: Metadata is answered"
    err = auth_error({"bootstrap.servers": addr, "security.protocol": "PLAINTEXT"})
    assert err is not None


def test_sasl_handshake_v0_raw_tokens(broker_factory, certs):
    """SaslHandshake v0 switches to raw size-prefixed tokens (pre-KIP-152 clients)."""
    b = secure_broker(broker_factory, certs, protocol="SASL_PLAINTEXT")
    with RawConn(b.listeners["SECURE"]) as conn:
        assert sasl_handshake(conn, "PLAIN", version=0) == 0
        token = f"\0{ADMIN_USER}\0{ADMIN_PASSWORD}".encode()
        conn.send_raw(struct.pack(">i", len(token)) + token)
        assert conn.recv_frame() == b""
        assert len(metadata_request(conn)) > 0
    with RawConn(b.listeners["SECURE"]) as conn:
        assert sasl_handshake(conn, "PLAIN", version=0) == 0
        token = f"\0{ADMIN_USER}\0wrong".encode()
        conn.send_raw(struct.pack(">i", len(token)) + token)
        with pytest.raises(ConnectionClosed):
            conn.recv_frame()


def test_user_credentials_through_kafka_admin_api(broker_factory, certs):
    """AlterUserScramCredentials / DescribeUserScramCredentials through confluent-kafka's
    AdminClient: a created user logs in (SCRAM and PLAIN), survives a restart, and after deletion
    is refused. Anonymous PLAINTEXT clients may not manage users on a SASL broker."""
    b = secure_broker(broker_factory, certs)
    admin = AdminClient(client_conf(b, certs))
    upsert = UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"alice-pw")
    for f in admin.alter_user_scram_credentials([upsert]).values():
        f.result(timeout=30)
    described = admin.describe_user_scram_credentials(["alice"])["alice"].result(timeout=30)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_512, 8192)]
    produce_and_consume(client_conf(b, certs, user="alice", password="alice-pw"), n=5)
    produce_and_consume(client_conf(b, certs, mechanism="PLAIN", user="alice", password="alice-pw"), n=5)
    assert auth_error(client_conf(b, certs, mechanism="SCRAM-SHA-256", user="alice", password="alice-pw")) is not None

    anonymous = AdminClient({"bootstrap.servers": b.kafka})
    with pytest.raises(KafkaException) as refused:
        for f in anonymous.alter_user_scram_credentials([upsert]).values():
            f.result(timeout=30)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    b.restart()
    produce_and_consume(client_conf(b, certs, user="alice", password="alice-pw"), n=5)
    admin = AdminClient(client_conf(b, certs))
    deletion = UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_512)
    for f in admin.alter_user_scram_credentials([deletion]).values():
        f.result(timeout=30)
    err = auth_error(client_conf(b, certs, user="alice", password="alice-pw"))
    assert err is not None and err.code() == KafkaError._AUTHENTICATION, err
    # Credentials are stored salted and hashed: the password never reaches the data directory.
    for root, _, files in os.walk(b.data_dir / "__cluster_metadata-0"):
        for name in files:
            assert b"alice-pw" not in (open(os.path.join(root, name), "rb").read())


def test_user_cli(broker_factory, certs):
    """`sluice user create|list|delete` manage credentials over the Kafka API as a super-user."""
    b = secure_broker(broker_factory, certs)
    base = [str(b.binary), "user", "--bootstrap-server", b.listeners["SECURE"],
            "--security-protocol", "SASL_SSL", "--ca-file", str(certs / "ca.crt"),
            "--admin-user", ADMIN_USER]
    env = {**os.environ, "SLUICE_ADMIN_PASSWORD": ADMIN_PASSWORD, "SLUICE_USER_PASSWORD": "bob-pw"}

    def run(*args):
        return subprocess.run(base + list(args), env=env, capture_output=True, text=True, timeout=60)

    r = run("create", "bob")
    assert r.returncode == 0, r.stderr
    r = run("list")
    assert r.returncode == 0, r.stderr
    assert "bob" in r.stdout and "SCRAM-SHA-512" in r.stdout and "SCRAM-SHA-256" in r.stdout, r.stdout
    produce_and_consume(client_conf(b, certs, mechanism="SCRAM-SHA-256", user="bob", password="bob-pw"), n=5)
    r = run("delete", "bob")
    assert r.returncode == 0, r.stderr
    assert "bob" not in run("list").stdout
    assert auth_error(client_conf(b, certs, user="bob", password="bob-pw")) is not None
    r = run("delete", "bob")
    assert r.returncode != 0 and "bob" in r.stderr


def test_kcat_sasl_ssl_scram(broker_factory, certs):
    """Debian's kcat (librdkafka 2.0.2) produces and consumes over SASL_SSL with SCRAM-SHA-512."""
    b = secure_broker(broker_factory, certs)
    topic = unique("kcat")
    common = ["kcat", "-b", b.listeners["SECURE"], "-X", "security.protocol=SASL_SSL",
              "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={ADMIN_USER}",
              "-X", f"sasl.password={ADMIN_PASSWORD}", "-X", f"ssl.ca.location={certs / 'ca.crt'}"]
    lines = [f"line-{i}" for i in range(20)]
    subprocess.run(common + ["-P", "-t", topic], input="\n".join(lines) + "\n", text=True, check=True, timeout=60)
    out = subprocess.run(common + ["-C", "-t", topic, "-o", "beginning", "-c", "20", "-e"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == lines


def test_connection_flood_over_per_ip_limit(broker_factory, certs):
    """A flood from one address past max_connections_per_ip is cut off at accept; a client from
    another address is served meanwhile, and the flood's own first connections keep working."""
    b = broker_factory(args=["--max-connections-per-ip", "20"])
    host, port = b.kafka.rsplit(":", 1)
    flood = []
    try:
        for _ in range(60):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(15)
            s.connect((host, int(port)))
            flood.append(s)
        closed = 0
        for s in flood:
            conn = RawConn(b.kafka, sock=s)
            try:
                conn.api_versions()
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError, OSError):
                closed += 1
        assert closed == 40, f"{closed} of 60 flood connections refused, want 40"
        produce_and_consume({"bootstrap.servers": b.kafka}, n=10)
    finally:
        for s in flood:
            s.close()


def test_sasl_auth_timeout_closes_silent_connections(broker_factory, certs):
    """A client that connects to a SASL listener and never authenticates is disconnected."""
    b = secure_broker(broker_factory, certs, protocol="SASL_PLAINTEXT", extra=["--sasl-auth-timeout-ms", "300"])
    with RawConn(b.listeners["SECURE"]) as conn:
        conn.api_versions()
        assert conn.wait_closed(timeout=30)
    assert auth_error(client_conf(b, certs, protocol="SASL_PLAINTEXT")) is None


def broker_on_live_cert_files(broker_factory, certs, tmp_path):
    """A broker with an SSL listener whose certificate and key are files the test may replace,
    and a TLS connection opened to it. Returns (broker, cert path, key path, SSL address, conn)."""
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    cert.write_bytes((certs / "server.crt").read_bytes())
    key.write_bytes((certs / "server.key").read_bytes())
    b = broker_factory(args=["--listener", "PLAINTEXT=PLAINTEXT://127.0.0.1:0", "--listener", "SECURE=SSL://127.0.0.1:0",
                             "--tls-cert-file", str(cert), "--tls-key-file", str(key)])
    addr = b.listeners["SECURE"]
    old = RawConn(addr, sock=tls_socket(addr, certs))
    old.api_versions()
    return b, cert, key, addr, old


def log_count(broker, text):
    return broker.log_path.read_text(errors="replace").count(text)


def test_sighup_reloads_certificate_without_dropping_connections(broker_factory, certs, tmp_path):
    """After the cert files are replaced and SIGHUP sent, new handshakes present the new
    certificate, while a connection opened before keeps being served. (The file watch may reload
    first; the SIGHUP reload is told apart by its log line.)"""
    b, cert, key, addr, old = broker_on_live_cert_files(broker_factory, certs, tmp_path)
    cert.write_bytes((certs / "rogue-server.crt").read_bytes())
    key.write_bytes((certs / "rogue-server.key").read_bytes())
    b.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: log_count(b, "SIGHUP: TLS certificates reloaded") == 1, 30, message="the SIGHUP reload")
    wait_until_served(addr, certs, ca="rogue-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_socket(addr, certs, ca="ca")
    assert old.api_versions(), "the connection from before the reload is still served"
    old.close()
    # A broken file on reload keeps the current certificate.
    key.write_text("not a key")
    b.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: log_count(b, "SIGHUP: keeping the previous TLS certificates") == 1, 30, message="the refused SIGHUP reload")
    tls_socket(addr, certs, ca="rogue-ca").close()
    assert b.running()


def test_replaced_certificate_files_are_served_without_a_signal(broker_factory, certs, tmp_path):
    """cert-manager and Kubernetes secret mounts replace the files and signal no one: the broker
    notices the change itself. A key file caught half-written keeps the certificate in force."""
    b, cert, key, addr, old = broker_on_live_cert_files(broker_factory, certs, tmp_path)
    # Replaced by rename, as a secret mount's symlink swap or `mv` does: new inodes.
    for name, live in (("rogue-server.crt", cert), ("rogue-server.key", key)):
        staged = tmp_path / f"staged-{name}"
        staged.write_bytes((certs / name).read_bytes())
        os.replace(staged, live)
    wait_until_served(addr, certs, ca="rogue-ca")
    assert old.api_versions(), "the connection from before the reload is still served"
    old.close()

    # (A reload can fail before this: between the two renames the key does not match the certificate.)
    refused = "certificate files changed: keeping the previous TLS certificates"
    before = log_count(b, refused)
    key.write_text("-----BEGIN PRIVATE KEY-----\nhalf")
    wait_until(lambda: log_count(b, refused) > before, 30, message="the broker noticed the broken key file")
    tls_socket(addr, certs, ca="rogue-ca").close()
    assert b.running()
    assert log_count(b, "SIGHUP") == 0


def wait_until_served(addr, certs, ca, timeout=30):
    """Waits until a handshake on `addr` verifies against `ca`: the broker serves the new files."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            tls_socket(addr, certs, ca=ca).close()
            return
        except ssl.SSLError:
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.1)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_large_request_in_small_pieces_is_answered(broker_factory, certs, protocol):
    """The receive low-water mark (read_low_water.rs) delays wakeups until most of a frame has
    arrived; it must never wait for bytes that will not come. Method: a ~600 KB Produce request
    sent in 1,000-byte writes (over TLS each is its own record), pausing where the broker has
    read a part and set a mark: after the size prefix, mid-frame, with less than the mark's cap
    and less than the TLS slack left, and before the last byte. The response must come within the
    client's timeout (a waiting mark would hold it until the 10-minute idle timeout), the records
    must be stored, and a second request on the same connection (mark back at 1) answered."""
    b = secure_broker(broker_factory, certs, protocol="SSL")
    topic = unique("pieces")
    create_topic(b.kafka, topic)
    addr = b.listeners["SECURE"] if protocol == "SSL" else b.kafka
    sock = tls_socket(addr, certs) if protocol == "SSL" else None
    with RawConn(addr, timeout=20, sock=sock) as conn:
        conn.api_versions()
        v = conn.pick_version(API_PRODUCE, [7, 8, 6, 5, 4, 3])
        records = record_batch([(None, bytes([i % 251]) * 1024, []) for i in range(600)])
        body = (string(None) + struct.pack(">hi", -1, 30000) + struct.pack(">i", 1) + string(topic)
                + struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(records)) + records)
        frame = conn.header(API_PRODUCE, v, flexible=False) + body
        wire = struct.pack(">i", len(frame)) + frame
        pauses = {4, len(wire) // 2, len(wire) - 200_000, len(wire) - 50_000, len(wire) - 1}
        sent = 0
        while sent < len(wire):
            nxt = min([p for p in pauses if p > sent] + [sent + 1000, len(wire)])
            conn.send_raw(wire[sent:nxt])
            sent = nxt
            if sent in pauses:
                time.sleep(0.3)  # let the broker read what is there and set its mark
        started = time.monotonic()
        resp = conn.recv_response(conn.correlation_id)
        assert time.monotonic() - started < 5, "the last byte must wake the broker"
        error, base_offset = parse_produce_first_partition(resp, flexible=False)
        assert (error, base_offset) == (0, 0)
        assert conn.api_versions(), "the next request on the connection is answered"
    assert watermarks(b.kafka, topic)[1] == 600
