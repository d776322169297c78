#!/usr/bin/env python3
"""Stripe API test shim in front of the localstripe emulator.

Test tooling only: this is not Stripe, and not a Stripe replacement. It sits in
front of a running localstripe (https://github.com/adrienverge/localstripe)
and adds the pieces a Shared Payment Token (SPT) payment rail needs that
localstripe lacks:

* test Shared Payment Granted Tokens
  (POST /v1/test_helpers/shared_payment/granted_tokens, GET
  /v1/shared_payment/granted_tokens/{id}, POST .../{id}/revoke);
* PaymentIntent creation with `shared_payment_granted_token`, mapped onto the
  token's PaymentMethod, with single use, amount, currency and expiry checks;
* Stripe's Idempotency-Key semantics (replay with `Idempotent-Replayed: true`,
  `idempotency_error` on a key reused with other parameters) for every POST;
* Stripe-shaped card errors (402 `card_error` with `decline_code` and the
  `payment_intent` object), `latest_charge` as an id, status checks on
  capture and cancel, and an echoed `Stripe-Version` header.

Everything else is forwarded to localstripe unchanged. Test hooks:
GET /_shim/health, GET /_shim/requests, DELETE /_shim/state.

Usage: python spt_shim.py --port P --upstream http://127.0.0.1:U
"""

import argparse
import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
import string
import sys
import time
from urllib.parse import parse_qsl, urlencode

from aiohttp import ClientError, ClientSession, ClientTimeout, web

LOG = logging.getLogger('spt_shim')

# Headers that describe one hop of a connection and must not be relayed.
HOP_BY_HOP = {
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
    'proxy-connection', 'te', 'trailer', 'trailers', 'transfer-encoding',
    'upgrade',
}
# Headers the shim recomputes itself on the way in or out.
RECOMPUTED = {'host', 'content-length', 'content-encoding', 'accept-encoding',
              'date', 'server'}

# PaymentIntent create fields localstripe rejects ("Unexpected <field>"):
# the shim consumes or drops them before forwarding.
DROPPED_PI_FIELDS = {
    'automatic_payment_methods', 'shared_payment_granted_token',
    'description', 'receipt_email', 'hooks', 'payment_method_data',
}

# Stripe test PaymentMethod ids that localstripe does not know, or emulates
# differently from Stripe (localstripe's pm_card_visa_chargeDeclined is a card
# that only fails when attached, so a charge with it succeeds). The shim
# creates a localstripe PaymentMethod with a card number that localstripe
# treats the way Stripe treats the magic id, and remembers the decline details
# Stripe would report for it.
CARD_EXP = {'card[exp_month]': '12', 'card[exp_year]': '2034',
            'card[cvc]': '123'}
TRANSLATED_TEST_PMS = {
    'pm_card_visa_chargeDeclined': ('4000000000000341', 'generic_decline',
                                    'Your card was declined.'),
    'pm_card_chargeDeclined': ('4000000000000341', 'generic_decline',
                               'Your card was declined.'),
    'pm_card_chargeDeclinedInsufficientFunds': (
        '4000000000000341', 'insufficient_funds',
        'Your card has insufficient funds.'),
    'pm_card_chargeDeclinedFraudulent': ('4000000000000341', 'fraudulent',
                                         'Your card was declined.'),
    'pm_card_chargeDeclinedLostCard': ('4000000000000341', 'lost_card',
                                       'Your card was declined.'),
    'pm_card_chargeDeclinedStolenCard': ('4000000000000341', 'stolen_card',
                                         'Your card was declined.'),
    'pm_card_authenticationRequired': ('4000002500003155', None, None),
    'pm_card_threeDSecure2Required': ('4000000000003220', None, None),
    'pm_card_mastercard': ('5555555555554444', None, None),
    'pm_card_visa_debit': ('4000056655665556', None, None),
}
DEFAULT_DECLINE = ('generic_decline', 'Your card was declined.')

CAPTURABLE = ('requires_capture',)
CANCELABLE = ('requires_payment_method', 'requires_capture',
              'requires_confirmation', 'requires_action', 'processing')
CANCELLATION_REASONS = ('duplicate', 'fraudulent', 'requested_by_customer',
                        'abandoned')

IDEMPOTENCY_TTL = 24 * 3600
MAX_LOGGED_REQUESTS = 10000
ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix, length=24):
    return prefix + ''.join(secrets.choice(ID_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------
# Small helpers: replies, errors, forms, auth


class Reply:
    """A response the shim has decided on, before its common headers."""

    def __init__(self, status, body=b'', content_type='application/json',
                 headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})

    @classmethod
    def json(cls, status, obj, headers=None):
        body = (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode()
        return cls(status, body, 'application/json', headers)

    def json_body(self):
        if 'json' not in (self.content_type or ''):
            return None
        try:
            return json.loads(self.body or b'null')
        except ValueError:
            return None


def stripe_error(status, message, type_='invalid_request_error', code=None,
                 param=None, headers=None, **extra):
    err = {'type': type_, 'message': message}
    if code is not None:
        err['code'] = code
    if param is not None:
        err['param'] = param
    err.update(extra)
    return Reply.json(status, {'error': err}, headers)


def parse_form(raw):
    """Form body -> ordered list of (key, value) pairs (Stripe takes forms)."""
    if not raw:
        return []
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        raise ValueError('request body is not UTF-8')
    return parse_qsl(text, keep_blank_values=True)


def form_as_dict(pairs):
    """{key: value} with a list for keys given more than once."""
    out = {}
    for k, v in pairs:
        if k in out:
            if not isinstance(out[k], list):
                out[k] = [out[k]]
            out[k].append(v)
        else:
            out[k] = v
    return out


def form_fingerprint(pairs):
    """What idempotency compares: the parsed form, key order ignored."""
    grouped = {}
    for k, v in pairs:
        grouped.setdefault(k, []).append(v)
    return sorted((k, tuple(v)) for k, v in grouped.items())


def top_field(key):
    """'usage_limits[currency]' -> 'usage_limits'."""
    return key.split('[', 1)[0]


def first(pairs, key):
    for k, v in pairs:
        if k == key:
            return v
    return None


def expand_list(pairs):
    return [v for k, v in pairs if re.fullmatch(r'expand\[\d*\]', k)]


def is_json_request(request):
    return 'json' in request.headers.get('Content-Type', '').lower()


def api_key_of(request):
    """(key, error Reply): the secret key from Bearer or Basic auth."""
    header = request.headers.get('Authorization', '').strip()
    if not header:
        return None, stripe_error(
            401, 'You did not provide an API key. Send your secret key in '
            'the Authorization header, as Bearer auth '
            '(Authorization: Bearer sk_test_...) or Basic auth with the key '
            'as the user name.')
    scheme, _, cred = header.partition(' ')
    cred = cred.strip()
    key = None
    if scheme.lower() == 'bearer':
        key = cred
    elif scheme.lower() == 'basic':
        try:
            key = base64.b64decode(cred, validate=True).decode('utf-8')
        except (binascii.Error, UnicodeDecodeError):
            key = None
        if key is not None:
            key = key.split(':', 1)[0]
    if not key:
        return None, stripe_error(
            401, 'Invalid Authorization header: use Bearer or Basic auth '
            'with a secret API key.')
    if key.startswith('pk_'):
        return None, stripe_error(
            401, 'This API call cannot be made with a publishable API key. '
            'Please use a secret API key.')
    if not key.startswith('sk_') or len(key) <= 3:
        shown = key[:8] + '*' * max(0, len(key) - 12) + key[-4:] \
            if len(key) > 12 else key[:3] + '***'
        return None, stripe_error(401, 'Invalid API Key provided: ' + shown)
    return key, None


def stripe_like_upstream_error(reply):
    """localstripe's 400 "Unexpected a, b" -> Stripe's wording."""
    if reply.status != 400:
        return reply
    err = (reply.json_body() or {}).get('error')
    message = (err or {}).get('message') or ''
    if not message.startswith('Unexpected '):
        return reply
    name = message[len('Unexpected '):].split(',')[0].strip()
    return stripe_error(400, 'Received unknown parameter: ' + name,
                        code='parameter_unknown', param=name,
                        headers=reply.headers)


def parse_int(value):
    if value is None or not re.fullmatch(r'-?\d+', value.strip()):
        return None
    return int(value)


# --------------------------------------------------------------------------
# The shim


class Shim:
    def __init__(self, upstream):
        self.upstream = upstream.rstrip('/')
        self.session = None
        self.reset()

    def reset(self):
        self.spts = {}            # spt id -> token record
        self.spt_locks = {}       # spt id -> asyncio.Lock
        self.idempotency = {}     # (secret key, Idempotency-Key) -> entry
        self.idem_locks = {}      # same key -> asyncio.Lock
        self.pi_locks = {}        # PaymentIntent id -> asyncio.Lock
        self.declines = {}        # localstripe pm id -> (decline_code, msg)
        self.cancellation_reasons = {}  # PaymentIntent id -> reason
        self.requests = []        # log of requests, for tests

    async def start(self, app):
        self.session = ClientSession(
            timeout=ClientTimeout(total=30), auto_decompress=True)

    async def stop(self, app):
        await self.session.close()

    # ---- upstream ---------------------------------------------------------

    def forward_headers(self, request, content_type=None):
        headers = {}
        for k, v in request.headers.items():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in RECOMPUTED:
                continue
            headers[k] = v
        if content_type is not None:
            for k in [k for k in headers if k.lower() == 'content-type']:
                del headers[k]
            headers['Content-Type'] = content_type
        return headers

    async def call(self, method, path, headers, body=None, query=None):
        """One request to localstripe -> Reply (502 if it is unreachable)."""
        url = self.upstream + path
        try:
            async with self.session.request(
                    method, url, headers=headers, data=body, params=query,
                    allow_redirects=False) as resp:
                data = await resp.read()
                out_headers = {}
                for k, v in resp.headers.items():
                    lk = k.lower()
                    if lk in HOP_BY_HOP or lk in RECOMPUTED or \
                            lk == 'content-type':
                        continue
                    out_headers[k] = v
                return Reply(resp.status, data,
                             resp.headers.get('Content-Type'), out_headers)
        except (ClientError, asyncio.TimeoutError, OSError) as e:
            LOG.error('upstream %s %s failed: %r', method, url, e)
            return stripe_error(
                502, 'The shim could not reach localstripe at %s: %s'
                % (self.upstream, e or type(e).__name__), type_='api_error')

    async def get_json(self, request, path):
        """GET an object from localstripe with the caller's credentials."""
        headers = {'Authorization': request.headers.get('Authorization', '')}
        reply = await self.call('GET', path, headers)
        return reply, (reply.json_body() if reply.status == 200 else None)

    async def post_form(self, request, path, pairs):
        headers = self.forward_headers(
            request, 'application/x-www-form-urlencoded')
        headers.pop('Idempotency-Key', None)
        return await self.call('POST', path, headers,
                               urlencode(pairs).encode())

    # ---- Stripe-like output ---------------------------------------------

    def normalize(self, obj, expand=()):
        """Make localstripe PaymentIntents (alone or in a list) Stripe-like."""
        if not isinstance(obj, dict):
            return obj
        if obj.get('object') == 'list' and isinstance(obj.get('data'), list):
            for item in obj['data']:
                self.normalize(item, expand)
            return obj
        if obj.get('object') != 'payment_intent':
            return obj
        status = obj.get('status')
        amount = obj.get('amount') or 0
        charge = obj.get('latest_charge')
        received = 0
        if isinstance(charge, dict):
            if charge.get('captured') and charge.get('status') == 'succeeded':
                received = (charge.get('amount') or 0) - \
                    (charge.get('amount_refunded') or 0)
            if 'latest_charge' not in expand:
                obj['latest_charge'] = charge.get('id')
        elif status == 'succeeded':
            received = amount
        # Stripe dropped the `charges` list from PaymentIntents in API
        # version 2022-11-15; `latest_charge` replaces it.
        obj.pop('charges', None)
        obj.setdefault('amount_received', received)
        obj.setdefault('amount_capturable',
                       amount if status == 'requires_capture' else 0)
        reason = self.cancellation_reasons.get(obj.get('id'))
        obj.setdefault('cancellation_reason',
                       reason if status == 'canceled' else None)
        return obj

    def normalized_reply(self, reply, expand=()):
        body = reply.json_body()
        if body is None:
            return reply
        self.normalize(body, expand)
        return Reply.json(reply.status, body, reply.headers)

    async def card_error(self, request, upstream_reply, expand=()):
        """localstripe's 402 -> Stripe's card_error with the PaymentIntent."""
        err = (upstream_reply.json_body() or {}).get('error') or {}
        charge_id = err.get('charge')
        pi_id = pm_id = None
        if charge_id:
            _, charge = await self.get_json(request,
                                            '/v1/charges/' + charge_id)
            if charge:
                pi_id = charge.get('payment_intent')
                pm_id = charge.get('payment_method')
        pi = None
        if pi_id:
            _, pi = await self.get_json(request, '/v1/payment_intents/' + pi_id)
            if pi:
                self.normalize(pi, expand)
        decline_code, message = DEFAULT_DECLINE
        for candidate in (pm_id, (pi or {}).get('payment_method')):
            if candidate in self.declines:
                decline_code, message = self.declines[candidate]
                break
        code = err.get('code') or 'card_declined'
        extra = {'decline_code': decline_code,
                 'doc_url': 'https://stripe.com/docs/error-codes/'
                 + code.replace('_', '-')}
        if charge_id:
            extra['charge'] = charge_id
        if pi is not None:
            extra['payment_intent'] = pi
            lpe = pi.get('last_payment_error')
            if isinstance(lpe, dict):
                lpe.update({'type': 'card_error', 'decline_code': decline_code,
                            'message': message})
                if pi.get('payment_method'):
                    lpe.setdefault('payment_method',
                                   {'id': pi['payment_method'],
                                    'object': 'payment_method'})
        if pm_id or (pi or {}).get('payment_method'):
            extra['payment_method'] = {
                'id': (pi or {}).get('payment_method') or pm_id,
                'object': 'payment_method'}
        return stripe_error(402, message, type_='card_error', code=code,
                            **extra), pi is not None

    # ---- request log and common headers -------------------------------

    def log_request(self, request, kind, pairs):
        auth = request.headers.get('Authorization', '').split(' ', 1)[0]
        entry = {
            'time': time.time(),
            'kind': kind,
            'method': request.method,
            'path': request.path,
            'idempotency_key': request.headers.get('Idempotency-Key'),
            'stripe_version': request.headers.get('Stripe-Version'),
            'authorization_scheme': auth.lower() or None,
            'form': form_as_dict(pairs),
            'status': None,
            'replayed': False,
        }
        self.requests.append(entry)
        del self.requests[:-MAX_LOGGED_REQUESTS]
        return entry

    def finish(self, request, reply, entry=None):
        headers = dict(reply.headers)
        headers.setdefault('Request-Id', new_id('req_', 14))
        version = request.headers.get('Stripe-Version')
        if version:
            headers['Stripe-Version'] = version
        idem = request.headers.get('Idempotency-Key')
        if idem and request.method == 'POST':
            headers['Idempotency-Key'] = idem
        if entry is not None:
            entry['status'] = reply.status
            entry['replayed'] = headers.get('Idempotent-Replayed') == 'true'
        resp = web.Response(status=reply.status, body=reply.body,
                            headers=headers)
        if reply.content_type:
            resp.headers['Content-Type'] = reply.content_type
        return resp

    # ---- idempotency -----------------------------------------------------

    async def idempotent(self, request, key, fingerprint, run):
        """Stripe's Idempotency-Key semantics around `run` (a coroutine
        function returning a Reply). Keyed by secret key + Idempotency-Key;
        requests with one key run one at a time."""
        idem = request.headers.get('Idempotency-Key')
        if request.method != 'POST' or idem is None:
            return await run()
        if not idem or len(idem) > 255:
            return stripe_error(
                400, 'Invalid Idempotency-Key: it must be 1 to 255 '
                'characters long.', param='Idempotency-Key')
        scope = (key or request.headers.get('Authorization', ''), idem)
        lock = self.idem_locks.setdefault(scope, asyncio.Lock())
        async with lock:
            now = time.time()
            entry = self.idempotency.get(scope)
            if entry and now - entry['created'] > IDEMPOTENCY_TTL:
                entry = None
                del self.idempotency[scope]
            if entry is not None:
                if entry['path'] != request.path:
                    return stripe_error(
                        400, "Keys for idempotent requests can only be used "
                        "for the same endpoint they were first used for "
                        "('%s' vs '%s'). Try using a key other than '%s' if "
                        "you meant to execute a different request."
                        % (entry['path'], request.path, idem),
                        type_='idempotency_error')
                if entry['fingerprint'] != fingerprint:
                    return stripe_error(
                        400, "Keys for idempotent requests can only be used "
                        "with the same parameters they were first used with. "
                        "Try using a key other than '%s' if you meant to "
                        "execute a different request." % idem,
                        type_='idempotency_error')
                saved = entry['reply']
                headers = dict(saved.headers)
                headers.pop('Request-Id', None)
                headers['Idempotent-Replayed'] = 'true'
                headers['Original-Request'] = entry['request_id']
                return Reply(saved.status, saved.body, saved.content_type,
                             headers)
            reply = await run()
            # Like Stripe, keep a result only once the endpoint has run:
            # successes and card declines, not validation errors.
            if 200 <= reply.status < 300 or reply.status == 402:
                request_id = new_id('req_', 14)
                reply.headers['Request-Id'] = request_id
                self.idempotency[scope] = {
                    'created': now, 'path': request.path,
                    'fingerprint': fingerprint, 'reply': reply,
                    'request_id': request_id,
                }
            return reply

    # ---- handlers: test hooks -------------------------------------------

    async def health(self, request):
        return web.Response(text='ok')

    async def list_requests(self, request):
        if request.query.get('all') in ('1', 'true'):
            items = self.requests
        else:
            items = [r for r in self.requests
                     if r['kind'] == 'payment_intent.create']
        return web.json_response(items, dumps=lambda o: json.dumps(o,
                                                                   indent=2))

    async def clear_state(self, request):
        self.reset()
        reply = await self.call('DELETE', '/_config/data', {})
        ok = 200 <= reply.status < 300
        return web.json_response({'cleared': True, 'upstream_cleared': ok,
                                  'upstream_status': reply.status},
                                 status=200 if ok else 502)

    # ---- handlers: Shared Payment Granted Tokens -------------------------

    def spt_object(self, spt):
        now = int(time.time())
        reason, deactivated_at = spt['deactivated_reason'], \
            spt['deactivated_at']
        if reason is None and spt['expires_at'] is not None \
                and now >= spt['expires_at']:
            reason, deactivated_at = 'expired', spt['expires_at']
        return {
            'id': spt['id'],
            'object': 'shared_payment.granted_token',
            'agent_details': None,
            'created': spt['created'],
            'customer': spt['customer'],
            'deactivated_at': deactivated_at,
            'deactivated_reason': reason,
            'livemode': False,
            'metadata': spt['metadata'],
            'payment_method_details': spt['payment_method_details'],
            'seller_details': spt['seller_details'] or None,
            'shared_metadata': spt['shared_metadata'],
            'usage_details': {'amount_captured': spt['amount_captured']},
            'usage_limits': {
                'currency': spt['currency'],
                'expires_at': spt['expires_at'],
                'max_amount': spt['max_amount'],
            },
        }

    async def resolve_payment_method(self, request, pm):
        """pm id -> (id to give localstripe, PaymentMethod JSON) or error."""
        if pm in TRANSLATED_TEST_PMS:
            number, decline_code, message = TRANSLATED_TEST_PMS[pm]
            pairs = [('type', 'card'), ('card[number]', number)] + \
                list(CARD_EXP.items())
            reply = await self.post_form(request, '/v1/payment_methods', pairs)
            body = reply.json_body()
            if reply.status != 200 or not body:
                return None, None, reply
            if decline_code:
                self.declines[body['id']] = (decline_code, message)
            return body['id'], body, None
        reply, body = await self.get_json(request, '/v1/payment_methods/' + pm)
        if reply.status == 404:
            return None, None, stripe_error(
                400, "No such PaymentMethod: '%s'" % pm,
                code='resource_missing', param='payment_method')
        if body is None:
            return None, None, reply
        # localstripe turns a test id it knows (pm_card_visa, ...) into a
        # stored PaymentMethod with an id of its own, as Stripe does.
        return body.get('id') or pm, body, None

    async def create_spt(self, request):
        key, err = api_key_of(request)
        raw = await request.read()
        try:
            pairs = parse_form(raw)
        except ValueError as e:
            pairs, err = [], err or stripe_error(400, str(e))
        entry = self.log_request(request, 'spt.create', pairs)
        if err is None and is_json_request(request):
            err = stripe_error(400, 'Send form-encoded parameters '
                               '(application/x-www-form-urlencoded).')
        if err is not None:
            return self.finish(request, err, entry)

        async def run():
            return await self._create_spt(request, pairs)
        reply = await self.idempotent(request, key, form_fingerprint(pairs),
                                      run)
        return self.finish(request, reply, entry)

    async def _create_spt(self, request, pairs):
        allowed_top = {'payment_method', 'customer', 'expand'}
        allowed_prefix = {'seller_details', 'metadata', 'shared_metadata'}
        allowed_limits = {'usage_limits[currency]', 'usage_limits[max_amount]',
                          'usage_limits[expires_at]'}
        for k, _ in pairs:
            top = top_field(k)
            if k in allowed_limits or top in allowed_prefix and k != top \
                    or k in allowed_top or re.fullmatch(r'expand\[\d*\]', k):
                continue
            return stripe_error(400, 'Received unknown parameter: ' + k,
                                code='parameter_unknown', param=k)
        pm = first(pairs, 'payment_method')
        currency = first(pairs, 'usage_limits[currency]')
        max_amount_raw = first(pairs, 'usage_limits[max_amount]')
        expires_raw = first(pairs, 'usage_limits[expires_at]')
        for name, value in (('payment_method', pm),
                            ('usage_limits[currency]', currency),
                            ('usage_limits[max_amount]', max_amount_raw)):
            if not value:
                return stripe_error(400, 'Missing required param: %s.' % name,
                                    code='parameter_missing', param=name)
        if not re.fullmatch(r'[A-Za-z]{3}', currency):
            return stripe_error(400, 'Invalid currency: %s.' % currency,
                                code='parameter_invalid_string',
                                param='usage_limits[currency]')
        currency = currency.lower()
        max_amount = parse_int(max_amount_raw)
        if max_amount is None:
            return stripe_error(400, 'Invalid integer: %s' % max_amount_raw,
                                code='parameter_invalid_integer',
                                param='usage_limits[max_amount]')
        if max_amount <= 0:
            return stripe_error(
                400, 'Invalid usage_limits[max_amount]: must be greater than '
                'or equal to 1.', code='parameter_invalid_integer',
                param='usage_limits[max_amount]')
        expires_at = None
        if expires_raw is not None:
            expires_at = parse_int(expires_raw)
            if expires_at is None:
                return stripe_error(400, 'Invalid integer: %s' % expires_raw,
                                    code='parameter_invalid_integer',
                                    param='usage_limits[expires_at]')
            if expires_at <= time.time():
                return stripe_error(
                    400, 'Invalid usage_limits[expires_at]: must be a time in '
                    'the future.', param='usage_limits[expires_at]')
        customer = first(pairs, 'customer')
        if customer is not None and not customer.startswith('cus_'):
            return stripe_error(400, "No such customer: '%s'" % customer,
                                code='resource_missing', param='customer')
        if not pm.startswith('pm_'):
            return stripe_error(400, "No such PaymentMethod: '%s'" % pm,
                                code='resource_missing',
                                param='payment_method')
        upstream_pm, pm_obj, err = await self.resolve_payment_method(
            request, pm)
        if err is not None:
            return err
        details = {'type': pm_obj.get('type')}
        if pm_obj.get('type') in pm_obj:
            details[pm_obj['type']] = pm_obj[pm_obj['type']]

        def sub(prefix):
            return {k[len(prefix) + 1:-1]: v for k, v in pairs
                    if k.startswith(prefix + '[') and k.endswith(']')}

        spt = {
            'id': new_id('spt_'),
            'created': int(time.time()),
            'payment_method': upstream_pm,
            'requested_payment_method': pm,
            'payment_method_details': details,
            'currency': currency,
            'max_amount': max_amount,
            'expires_at': expires_at,
            'customer': customer,
            'seller_details': sub('seller_details'),
            'metadata': sub('metadata'),
            'shared_metadata': sub('shared_metadata'),
            'used': False,
            'payment_intent': None,
            'amount_captured': None,
            'deactivated_reason': None,
            'deactivated_at': None,
        }
        self.spts[spt['id']] = spt
        return Reply.json(200, self.spt_object(spt))

    async def get_spt(self, request):
        _, err = api_key_of(request)
        if err is None:
            spt = self.spts.get(request.match_info['id'])
            if spt is None:
                err = stripe_error(
                    404, "No such shared payment granted token: '%s'"
                    % request.match_info['id'], code='resource_missing',
                    param='id')
            else:
                return self.finish(request, Reply.json(200,
                                                        self.spt_object(spt)))
        return self.finish(request, err)

    async def revoke_spt(self, request):
        key, err = api_key_of(request)
        pairs = parse_form(await request.read()) if err is None else []
        if err is not None:
            return self.finish(request, err)

        async def run():
            spt = self.spts.get(request.match_info['id'])
            if spt is None:
                return stripe_error(
                    404, "No such shared payment granted token: '%s'"
                    % request.match_info['id'], code='resource_missing',
                    param='id')
            if spt['deactivated_reason'] is None:
                spt['deactivated_reason'] = 'revoked'
                spt['deactivated_at'] = int(time.time())
            return Reply.json(200, self.spt_object(spt))
        reply = await self.idempotent(request, key, form_fingerprint(pairs),
                                      run)
        return self.finish(request, reply)

    # ---- handlers: PaymentIntents ---------------------------------------

    async def create_payment_intent(self, request):
        key, err = api_key_of(request)
        raw = await request.read()
        try:
            pairs = parse_form(raw)
        except ValueError as e:
            pairs, err = [], err or stripe_error(400, str(e))
        entry = self.log_request(request, 'payment_intent.create', pairs)
        if err is None and is_json_request(request):
            err = stripe_error(400, 'Send form-encoded parameters '
                               '(application/x-www-form-urlencoded).')
        if err is not None:
            return self.finish(request, err, entry)

        async def run():
            return await self._create_payment_intent(request, pairs)
        reply = await self.idempotent(request, key, form_fingerprint(pairs),
                                      run)
        return self.finish(request, reply, entry)

    async def _create_payment_intent(self, request, pairs):
        expand = expand_list(pairs)
        spt_ids = {v for k, v in pairs
                   if k in ('shared_payment_granted_token',
                            'payment_method_data[shared_payment_granted_token]'
                            )}
        if len(spt_ids) > 1:
            return stripe_error(
                400, 'Conflicting shared_payment_granted_token values.',
                param='shared_payment_granted_token')
        forward = [(k, v) for k, v in pairs
                   if top_field(k) not in DROPPED_PI_FIELDS]
        if not spt_ids:
            pm = first(forward, 'payment_method')
            if pm in TRANSLATED_TEST_PMS:
                upstream_pm, _, err = await self.resolve_payment_method(
                    request, pm)
                if err is not None:
                    return err
                forward = [(k, upstream_pm if k == 'payment_method' else v)
                           for k, v in forward]
            reply, _ = await self._forward_create(request, forward, expand)
            return reply

        spt_id = spt_ids.pop()
        if first(pairs, 'payment_method') is not None:
            return stripe_error(
                400, 'You cannot provide both payment_method and '
                'shared_payment_granted_token.', param='payment_method')
        lock = self.spt_locks.setdefault(spt_id, asyncio.Lock())
        async with lock:
            spt = self.spts.get(spt_id)
            param = 'shared_payment_granted_token'
            if spt is None:
                return stripe_error(
                    400, "No such shared payment granted token: '%s'"
                    % spt_id, code='resource_missing', param=param)
            if spt['deactivated_reason'] == 'revoked':
                return stripe_error(
                    400, "The shared payment granted token '%s' has been "
                    "revoked and can no longer be used." % spt_id,
                    param=param)
            if spt['used']:
                return stripe_error(
                    400, "The shared payment granted token '%s' has already "
                    "been used (by %s) and can no longer be used."
                    % (spt_id, spt['payment_intent']), param=param)
            if spt['expires_at'] is not None and \
                    time.time() >= spt['expires_at']:
                return stripe_error(
                    400, "The shared payment granted token '%s' expired at "
                    "%d and can no longer be used."
                    % (spt_id, spt['expires_at']), param=param)
            amount_raw = first(pairs, 'amount')
            amount = parse_int(amount_raw)
            if amount_raw is None:
                return stripe_error(400, 'Missing required param: amount.',
                                    code='parameter_missing', param='amount')
            if amount is None:
                return stripe_error(400, 'Invalid integer: %s' % amount_raw,
                                    code='parameter_invalid_integer',
                                    param='amount')
            currency = (first(pairs, 'currency') or '').lower()
            if currency != spt['currency']:
                return stripe_error(
                    400, "The PaymentIntent currency (%s) does not match the "
                    "usage_limits[currency] (%s) of the shared payment "
                    "granted token '%s'." % (currency or 'none',
                                             spt['currency'], spt_id),
                    param='currency')
            if amount > spt['max_amount']:
                return stripe_error(
                    400, "The PaymentIntent amount (%d) exceeds the "
                    "usage_limits[max_amount] (%d %s) of the shared payment "
                    "granted token '%s'." % (amount, spt['max_amount'],
                                             spt['currency'], spt_id),
                    param='amount')
            forward = [(k, v) for k, v in forward
                       if k != 'metadata[shared_payment_granted_token]']
            forward.append(('payment_method', spt['payment_method']))
            forward.append(('metadata[shared_payment_granted_token]', spt_id))
            if spt['customer'] and first(forward, 'customer') is None:
                forward.append(('customer', spt['customer']))
            reply, created = await self._forward_create(request, forward,
                                                        expand)
            if created:
                spt['used'] = True
                spt['deactivated_reason'] = 'consumed'
                spt['deactivated_at'] = int(time.time())
                body = reply.json_body() or {}
                pi = body.get('payment_intent') or \
                    body.get('error', {}).get('payment_intent') or body
                spt['payment_intent'] = pi.get('id')
                if pi.get('status') == 'succeeded':
                    spt['amount_captured'] = {'value': amount,
                                              'currency': currency}
            return reply

    async def _forward_create(self, request, forward, expand):
        """POST the PaymentIntent to localstripe -> (Reply, created?)."""
        reply = await self.post_form(request, '/v1/payment_intents', forward)
        if reply.status == 200:
            return self.normalized_reply(reply, expand), True
        if reply.status == 402:
            return await self.card_error(request, reply, expand)
        return stripe_like_upstream_error(reply), False

    async def payment_intent_action(self, request):
        action = request.match_info['action']
        pi_id = request.match_info['id']
        key, err = api_key_of(request)
        raw = await request.read()
        try:
            pairs = parse_form(raw)
        except ValueError as e:
            pairs, err = [], err or stripe_error(400, str(e))
        entry = self.log_request(request, 'payment_intent.' + action, pairs)
        if err is not None:
            return self.finish(request, err, entry)

        async def run():
            lock = self.pi_locks.setdefault(pi_id, asyncio.Lock())
            async with lock:
                return await self._payment_intent_action(request, action,
                                                         pi_id, pairs)
        reply = await self.idempotent(request, key, form_fingerprint(pairs),
                                      run)
        return self.finish(request, reply, entry)

    async def _payment_intent_action(self, request, action, pi_id, pairs):
        expand = expand_list(pairs)
        forward = list(pairs)
        reason = None
        if action in ('capture', 'cancel'):
            reply, pi = await self.get_json(request,
                                            '/v1/payment_intents/' + pi_id)
            if pi is None:
                return reply
            self.normalize(pi)
            status = pi.get('status')
            if action == 'capture' and status not in CAPTURABLE:
                return stripe_error(
                    400, "This PaymentIntent's status is %s, so it cannot be "
                    "captured. Only a PaymentIntent with one of the "
                    "following statuses may be captured: %s."
                    % (status, ', '.join(CAPTURABLE)),
                    code='payment_intent_unexpected_state',
                    payment_intent=pi)
            if action == 'cancel' and status not in CANCELABLE:
                return stripe_error(
                    400, "You cannot cancel this PaymentIntent because it has "
                    "a status of %s. Only a PaymentIntent with one of the "
                    "following statuses may be canceled: %s."
                    % (status, ', '.join(CANCELABLE)),
                    code='payment_intent_unexpected_state',
                    payment_intent=pi)
        if action == 'cancel':
            reason = first(pairs, 'cancellation_reason')
            if reason is not None and reason not in CANCELLATION_REASONS:
                return stripe_error(
                    400, 'Invalid cancellation_reason: must be one of %s'
                    % ', '.join(CANCELLATION_REASONS),
                    code='parameter_invalid_string',
                    param='cancellation_reason')
            forward = [(k, v) for k, v in forward
                       if k != 'cancellation_reason']
        reply = await self.post_form(
            request, '/v1/payment_intents/%s/%s' % (pi_id, action), forward)
        if reply.status == 200:
            if action == 'cancel' and reason:
                self.cancellation_reasons[pi_id] = reason
            return self.normalized_reply(reply, expand)
        if reply.status == 402:
            out, _ = await self.card_error(request, reply, expand)
            return out
        return stripe_like_upstream_error(reply)

    # ---- everything else -------------------------------------------------

    async def forward(self, request):
        raw = await request.read()
        kind = 'forward'
        pairs = []
        if request.method == 'POST' and not is_json_request(request):
            try:
                pairs = parse_form(raw)
            except ValueError:
                pairs = []
        entry = self.log_request(request, kind, pairs) \
            if request.path.startswith('/v1/') else None
        path_qs = request.rel_url.raw_path_qs if hasattr(
            request.rel_url, 'raw_path_qs') else str(request.rel_url)

        async def run():
            reply = await self.call(request.method, path_qs,
                                    self.forward_headers(request), raw or None)
            if request.path.startswith('/v1/payment_intents') and \
                    reply.status == 200:
                expand = expand_list(pairs) + [
                    v for k, v in request.query.items()
                    if re.fullmatch(r'expand\[\d*\]', k)]
                reply = self.normalized_reply(reply, expand)
            if request.path.startswith('/v1/'):
                reply = stripe_like_upstream_error(reply)
            return reply

        scheme = request.headers.get('Authorization', '').split(' ', 1)[0]
        if request.path.startswith('/v1/') and scheme and \
                scheme.lower() not in ('bearer', 'basic'):
            # localstripe answers 500 to these; Stripe answers 401.
            _, err = api_key_of(request)
            return self.finish(request, err, entry)
        if request.method == 'POST' and request.path.startswith('/v1/'):
            key, _ = api_key_of(request)
            fingerprint = form_fingerprint(pairs) if pairs or not raw \
                else [('<raw>', (raw.decode('latin-1'),))]
            reply = await self.idempotent(request, key, fingerprint, run)
        else:
            reply = await run()
        if not request.path.startswith('/v1/'):
            # localstripe's own endpoints (/_config/..., js.stripe.com):
            # relay as they are.
            resp = web.Response(status=reply.status, body=reply.body,
                                headers=reply.headers)
            if reply.content_type:
                resp.headers['Content-Type'] = reply.content_type
            return resp
        return self.finish(request, reply, entry)


def make_app(upstream):
    shim = Shim(upstream)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.on_startup.append(shim.start)
    app.on_cleanup.append(shim.stop)
    r = app.router
    r.add_get('/_shim/health', shim.health)
    r.add_get('/_shim/requests', shim.list_requests)
    r.add_delete('/_shim/state', shim.clear_state)
    r.add_post('/v1/test_helpers/shared_payment/granted_tokens',
               shim.create_spt)
    r.add_post('/v1/test_helpers/shared_payment/granted_tokens/{id}/revoke',
               shim.revoke_spt)
    r.add_get('/v1/shared_payment/granted_tokens/{id}', shim.get_spt)
    r.add_post('/v1/payment_intents', shim.create_payment_intent)
    r.add_post('/v1/payment_intents/{id}/{action:capture|cancel|confirm}',
               shim.payment_intent_action)
    r.add_route('*', '/{tail:.*}', shim.forward)
    app['shim'] = shim
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Stripe API test shim (Shared Payment Tokens, '
        'idempotency) in front of localstripe. Test tooling only.')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--upstream', required=True,
                        help='localstripe base URL, e.g. http://127.0.0.1:8420')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default 127.0.0.1)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s '
                        '%(message)s')
    web.run_app(make_app(args.upstream), host=args.host, port=args.port,
                access_log=logging.getLogger('spt_shim.access'),
                print=lambda *a: LOG.info(' '.join(map(str, a))))


if __name__ == '__main__':
    main()
