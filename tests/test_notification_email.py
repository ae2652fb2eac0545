"""The e-mail transport against real SMTP servers (aiosmtpd, in this process): a login, STARTTLS and
smtps with a certificate the client must verify, and a certificate the client does not trust refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from marketplace.notifications import email
from tests.test_notifications import Inbox, free_port

USER, PASSWORD = "mailer", "s3cret pass"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, and a server TLS context that presents it."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return cert_file, context


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok)


def serve(**options):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, **options)
    controller.start()
    return inbox, port, controller


def one_message() -> list[tuple[str, str, str]]:
    return [("worker@example.com", "Your submission was approved", "Hello")]


def test_starttls_then_login_with_a_verified_certificate(certificate, monkeypatch):
    cert_file, context = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the client trusts our certificate, nothing weaker
    inbox, port, controller = serve(tls_context=context, require_starttls=True, auth_require_tls=True)
    try:
        url = f"smtp://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{port}"
        assert email.send(url, "noreply@example.com", one_message()) == [None]
        assert [m.rcpt_tos for m in inbox.messages] == [["worker@example.com"]]
    finally:
        controller.stop()


def test_an_untrusted_certificate_is_refused_not_ignored(certificate):
    _, context = certificate
    inbox, port, controller = serve(tls_context=context, require_starttls=True)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            email.send(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}", "noreply@example.com", one_message())
        assert inbox.messages == []
    finally:
        controller.stop()


def test_smtps_is_tls_from_the_first_byte(certificate, monkeypatch):
    cert_file, context = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    inbox, port, controller = serve(ssl_context=context,
                                    auth_require_tls=False)
    try:
        assert email.send(f"smtps://{USER}:{PASSWORD}@127.0.0.1:{port}", "noreply@example.com",
                          one_message()) == [None]
        assert len(inbox.messages) == 1
    finally:
        controller.stop()
