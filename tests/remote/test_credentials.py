"""aim.remote.credentials: URLs, the credentials file and their precedence."""
from __future__ import annotations

import pytest

from aim.remote.credentials import parse_url, settings_for


@pytest.mark.parametrize('url, expected', [
    ('aim://host:1234', ('host', 1234, False)),
    ('aims://host.example.com:443', ('host.example.com', 443, True)),
    ('aim://10.0.0.5', ('10.0.0.5', 53800, False)),
    ('aim://[::1]:9000', ('::1', 9000, False)),
    ('aims://[fe80::1]', ('fe80::1', 53800, True)),
    ('AIM://h:1/', ('h', 1, False)),
])
def test_urls(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize('url', ['http://host:1', 'host:1', 'aim://', 'aim://host:0',
                                 'aim://host:70000', 'aim://host:x', 'aim://::1:5',
                                 'aim://[::1', 'aim://host/path', 'aim://u@host', 'aim://host:',
                                 'aim://[nothost]:1'])
def test_bad_urls_name_the_url_and_the_accepted_forms(url):
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    assert repr(url) in str(caught.value) and 'aims://HOST[:PORT]' in str(caught.value)


@pytest.fixture
def credentials(tmp_path, monkeypatch):
    path = tmp_path / 'credentials'
    monkeypatch.setenv('AIM_CREDENTIALS_FILE', str(path))
    return path


def test_nothing_configured(monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    settings = settings_for('aim://h:1')
    assert (settings.token, settings.tls, settings.ssl_context, settings.url) == \
        (None, False, None, 'aim://h:1')
    assert settings.http_url == 'http://h:1'


def test_the_credentials_file(credentials, tmp_path):
    ca = tmp_path / 'ca.pem'
    credentials.write_text('[h:1]\ntoken = from-file-0123456789\n\n'
                           '[[::1]:53800]\ntoken = v6-token-0123456789\ntls = true\n')
    settings = settings_for('aim://h:1')
    assert settings.token == 'from-file-0123456789' and not settings.tls
    assert 'from-file' not in repr(settings)
    settings = settings_for('aim://[::1]')
    assert settings.token == 'v6-token-0123456789' and settings.tls
    assert settings.url == 'aims://[::1]:53800' and settings.ssl_context is not None
    assert settings_for('aim://h:2').token is None
    credentials.write_text(f'[h:1]\nca_bundle = {ca}\n')
    with pytest.raises(ValueError, match='CA bundle'):  # TLS because of the bundle
        settings_for('aim://h:1')


def test_the_environment_wins(credentials, monkeypatch):
    credentials.write_text('[h:1]\ntoken = from-file-0123456789\n')
    monkeypatch.setenv('AIM_REMOTE_TOKEN', 'from-env-0123456789')
    monkeypatch.setenv('AIM_REMOTE_TLS', '1')
    settings = settings_for('aim://h:1')
    assert settings.token == 'from-env-0123456789' and settings.tls
    assert settings.url == 'aims://h:1'


def test_a_bad_credentials_file_is_named(credentials):
    credentials.write_text('token = no section\n')
    with pytest.raises(ValueError, match=str(credentials)):
        settings_for('aim://h:1')
    credentials.write_text('[h:1]\ntls = maybe\n')
    with pytest.raises(ValueError, match='not true or false'):
        settings_for('aim://h:1')
    credentials.unlink()
    with pytest.raises(ValueError, match='does not exist'):
        settings_for('aim://h:1')
