"""The broker factory turns LEXCARE_KAFKA_* security settings into aiokafka's options.

No broker is contacted: the test reads the options FastStream hands to aiokafka's producer
and consumer (and the admin client's), for each security protocol.
"""

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.delivery import DeliveryGuard
from shared.kafka import admin_client_options, make_broker
from shared.logging import configure_logging
from shared.settings import LexcareSettings


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed CA certificate and its key (PEM files), made with openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "ca.pem", folder / "ca.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=lexcare-test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def client_options(**security: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The producer/connection options and the consumer options of the service's broker."""
    settings = LexcareSettings(service_name="probe", kafka="broker:9093", **security)
    broker = make_broker(settings, configure_logging("probe"), DeliveryGuard(settings))
    consumer = broker.config.builder.keywords
    return broker._connection_kwargs, consumer


def test_plaintext_by_default_sends_no_credentials_and_no_tls():
    for options in client_options():
        assert options.get("security_protocol", "PLAINTEXT") == "PLAINTEXT"
        assert options.get("ssl_context") is None
        assert "sasl_plain_username" not in options
    plain = LexcareSettings(kafka="broker:9093", kafka_security_protocol="PLAINTEXT")
    assert admin_client_options(plain) == {"bootstrap_servers": "broker:9093"}


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_sasl_plaintext_passes_the_mechanism_and_credentials_without_tls(mechanism: str):
    security = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": "lexcare-intake",
        "kafka_sasl_password": "s3cret",
    }
    for options in client_options(**security):
        assert options["security_protocol"] == "SASL_PLAINTEXT"
        assert options["sasl_mechanism"] == mechanism
        assert options["sasl_plain_username"] == "lexcare-intake"
        assert options["sasl_plain_password"] == "s3cret"
        assert options["ssl_context"] is None
    admin = admin_client_options(LexcareSettings(**security))
    assert admin["security_protocol"] == "SASL_PLAINTEXT"
    assert admin["sasl_mechanism"] == mechanism
    assert admin["sasl_plain_username"] == "lexcare-intake"


def test_ssl_verifies_the_broker_against_the_configured_ca(certificate):
    cert, _ = certificate
    for options in client_options(kafka_security_protocol="SSL", kafka_ssl_cafile=str(cert)):
        assert options["security_protocol"] == "SSL"
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        subjects = [c["subject"] for c in context.get_ca_certs()]
        assert subjects == [((("commonName", "lexcare-test"),),)]
        assert "sasl_mechanism" not in options


def test_sasl_ssl_combines_scram_credentials_with_tls_and_a_client_certificate(certificate):
    cert, key = certificate
    security = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "lexcare-metrics",
        "kafka_sasl_password": "pw",
        "kafka_ssl_cafile": str(cert),
        "kafka_ssl_certfile": str(cert),
        "kafka_ssl_keyfile": str(key),
    }
    for options in client_options(**security):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == "lexcare-metrics"
        assert isinstance(options["ssl_context"], ssl.SSLContext)
    admin = admin_client_options(LexcareSettings(**security))
    assert admin["security_protocol"] == "SASL_SSL"
    assert isinstance(admin["ssl_context"], ssl.SSLContext)


def test_empty_values_from_a_compose_env_file_mean_unset(certificate, tmp_path):
    """Compose passes unset variables as "": no CA file is the system store, no key file
    means the key sits in the certificate file."""
    cert, key = certificate
    combined = tmp_path / "client.pem"
    combined.write_text(cert.read_text() + key.read_text())
    for options in client_options(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile="",
        kafka_ssl_certfile=str(combined),
        kafka_ssl_keyfile="",
        kafka_sasl_username="",
    ):
        assert options["security_protocol"] == "SSL"
        assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_an_unknown_protocol_is_refused_at_start():
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        LexcareSettings(kafka_security_protocol="SASL_TLS")
