"""Where a client of ``aim server`` finds the address, the token and the TLS settings.

URLs: ``aim://HOST[:PORT]`` (plain HTTP) and ``aims://HOST[:PORT]`` (HTTPS); the port
defaults to 53800; an IPv6 address goes in brackets, ``aim://[::1]:53800``.

Credentials file: ``AIM_CREDENTIALS_FILE``, default ``~/.config/aim/credentials``, an INI
file with one section per server, named ``HOST:PORT`` exactly as in the URL::

    [tracking.example.com:53800]
    token = Zq3v...the-secret
    ca_bundle = ~/certs/our-ca.pem     ; optional, relative to this file's folder
    tls = true                         ; optional

    [[::1]:53800]
    token = ...

A ``[DEFAULT]`` section applies to every server (configparser's rule). A missing default
file means no credentials; a file named by ``AIM_CREDENTIALS_FILE`` must exist. A file that
cannot be parsed raises ``ValueError`` naming it.

Precedence, first found wins:

- token: env ``AIM_REMOTE_TOKEN``; the section's ``token``; none.
- CA bundle: env ``AIM_REMOTE_CA_BUNDLE``; the section's ``ca_bundle``; none (the
  system's certificate authorities).
- TLS is on when any of these holds: the URL is ``aims://``; env ``AIM_REMOTE_TLS`` is
  ``1``/``true``/``yes``/``on``; the section says ``tls = true``; a CA bundle is
  configured (either way). Nothing turns it off for an ``aims://`` URL.

With TLS the connection uses ``ssl.create_default_context(cafile=bundle)``: the
certificate is verified and must name the host of the URL.

Standard library only; loaded on first use of a remote repository, never by ``import aim``.
"""
from __future__ import annotations

import configparser
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass

DEFAULT_PORT = 53800
DEFAULT_CREDENTIALS_FILE = os.path.join('~', '.config', 'aim', 'credentials')
ACCEPTED_FORMS = ('aim://HOST[:PORT] (HTTP) or aims://HOST[:PORT] (HTTPS), port 53800 by '
                  'default, an IPv6 address in brackets: aim://[::1]:53800')
_HOST_NAME = re.compile(r'[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?\Z')
_TRUE = ('1', 'true', 'yes', 'on')


@dataclass
class Settings:
    """How to reach one server."""
    host: str  # IPv6 addresses without brackets
    port: int
    tls: bool
    token: str | None
    ssl_context: ssl.SSLContext | None
    url: str  # display form: aim://host:53800 or aims://host:53800

    @property
    def netloc(self) -> str:
        """``host:port`` as it goes in a Host header (IPv6 in brackets)."""
        return f'{_shown(self.host)}:{self.port}'

    @property
    def http_url(self) -> str:
        """The server's base address, ``http(s)://host:port``."""
        return f'{"https" if self.tls else "http"}://{self.netloc}'

    def __repr__(self) -> str:  # keeps the token out of logs and tracebacks
        token = '<set>' if self.token else None
        return (f'Settings(host={self.host!r}, port={self.port}, tls={self.tls}, '
                f'token={token}, url={self.url!r})')


def _shown(host: str) -> str:
    return f'[{host}]' if ':' in host else host


def parse_url(url: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of an ``aim://`` / ``aims://`` URL; ValueError otherwise."""
    def bad(why: str) -> ValueError:
        return ValueError(f'{url!r} is not a remote repository URL ({why}); write '
                          f'{ACCEPTED_FORMS}.')

    if not isinstance(url, str):
        raise bad('not a string')
    scheme, sep, rest = url.strip().partition('://')
    if not sep or scheme.lower() not in ('aim', 'aims'):
        raise bad('it must start with aim:// or aims://')
    rest = rest.rstrip('/')
    if not rest or any(c in rest for c in '/?#@ '):
        raise bad('only a host and a port may follow the scheme')
    if rest.startswith('['):
        end = rest.find(']')
        if end < 0:
            raise bad('an IPv6 address lacks its closing "]"')
        host, after = rest[1:end], rest[end + 1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad(f'{host!r} is not an IPv6 address') from None
        if after and not after.startswith(':'):
            raise bad('":PORT" may follow the "]" and nothing else')
        port_text = after[1:] if after else ''
    else:
        host, _, port_text = rest.partition(':')
        if ':' in port_text:
            raise bad('an IPv6 address must be written in brackets')
        if not _HOST_NAME.match(host):
            raise bad(f'{host!r} is not a host name or address')
    if port_text == '' and rest.endswith(':'):
        raise bad('the port after ":" is missing')
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad(f'the port {port_text!r} is not a number from 1 to 65535')
        port = int(port_text)
    else:
        port = DEFAULT_PORT
    return host, port, scheme.lower() == 'aims'


def credentials_path() -> tuple[str, bool]:
    """The credentials file and whether the user named it (AIM_CREDENTIALS_FILE)."""
    named = os.environ.get('AIM_CREDENTIALS_FILE')
    if named:
        return os.path.expanduser(named), True
    return os.path.expanduser(DEFAULT_CREDENTIALS_FILE), False


def _section(host: str, port: int) -> dict[str, str]:
    path, named = credentials_path()
    if not os.path.exists(path):
        if named:
            raise ValueError(f'AIM_CREDENTIALS_FILE names {path}, which does not exist. '
                             f'Create it (an INI file with a [HOST:PORT] section holding '
                             f'"token = ...") or unset the variable.')
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except (configparser.Error, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f'Cannot parse the credentials file {path} ({first}). It is an INI '
                         f'file: a [HOST:PORT] section per server with "token = ...", '
                         f'optional "ca_bundle = PATH" and "tls = true".') from None
    except OSError as e:
        raise ValueError(f'Cannot read the credentials file {path} ({e.strerror}).') from None
    name = f'{_shown(host)}:{port}'
    values = dict(parser[name]) if parser.has_section(name) else dict(parser.defaults())
    values['__file__'] = path
    values['__section__'] = name
    return values


def settings_for(url: str) -> Settings:
    """How to reach the server of ``url`` (see the module docstring for the precedence)."""
    host, port, tls = parse_url(url)
    section = _section(host, port)
    path = section.get('__file__', '')
    token = os.environ.get('AIM_REMOTE_TOKEN') or section.get('token') or None
    bundle = os.environ.get('AIM_REMOTE_CA_BUNDLE') or None
    if bundle is None and section.get('ca_bundle'):
        bundle = os.path.join(os.path.dirname(path), os.path.expanduser(section['ca_bundle']))
    tls = tls or os.environ.get('AIM_REMOTE_TLS', '').strip().lower() in _TRUE
    if not tls and 'tls' in section:
        value = section['tls'].strip().lower()
        if value not in _TRUE + ('0', 'false', 'no', 'off'):
            raise ValueError(f'The credentials file {path}, section [{section["__section__"]}]: '
                             f'tls = {section["tls"]!r} is not true or false.')
        tls = value in _TRUE
    tls = tls or bundle is not None
    context = None
    if tls:
        try:
            context = ssl.create_default_context(cafile=bundle)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f'Cannot load the CA bundle {bundle} for {url} ({e}). Point '
                             f'AIM_REMOTE_CA_BUNDLE or ca_bundle in the credentials file at '
                             f'a PEM file of the certificate authority.') from None
    shown = f'{"aims" if tls else "aim"}://{_shown(host)}:{port}'
    return Settings(host=host, port=port, tls=tls, token=token, ssl_context=context, url=shown)
