"""The sdk.v1 types and their three wire formats, for a Python peer of the Rust SDK.

The message classes come from the FileDescriptorSet the Rust codec is built from
(`sdk_codec::FILE_DESCRIPTOR_SET`, compiled from proto/sdk/v1 by protox): no protoc,
no generated code. The formats follow the Rust codec (crates/sdk-codec):

- JSON: the proto3 JSON mapping (google.protobuf.json_format).
- Protobuf: the binary encoding.
- MessagePack: a map per message keyed by the lowerCamelCase JSON names; enums by
  name; 64-bit integers as native integers; Timestamp as an RFC 3339 string; Struct as
  a map; `repeated float` (embeddings) as one `bin` of little-endian f32.

Readers are strict about what the Rust side writes (so that a change of layout is
noticed); writers write what the Rust readers accept.
"""

import json
import struct
import uuid
from datetime import datetime, timezone

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, text_format
from google.protobuf.descriptor import FieldDescriptor

JSON = "application/json"
MSGPACK = "application/msgpack"
PROTOBUF = "application/protobuf"
# Short name -> media type, in the order the tests use them.
FORMATS = {"json": JSON, "msgpack": MSGPACK, "protobuf": PROTOBUF}

# Schema versions of the Rust codec (`Payload::SCHEMA`): StatusUpdate is at v2.
SCHEMA_VERSIONS = {
    "AgentMessage": 1,
    "AgentTask": 1,
    "TaskResult": 1,
    "EventMessage": 1,
    "Document": 1,
    "DocumentChunk": 1,
    "StatusUpdate": 2,
    "ErrorInfo": 1,
}


class Mismatch(Exception):
    """The Rust side wrote or answered something other than the contract says."""


class Types:
    """The sdk.v1 message classes, loaded from a serialized FileDescriptorSet."""

    def __init__(self, descriptor_set_path):
        with open(descriptor_set_path, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
        self.pool = descriptor_pool.DescriptorPool()
        # The set holds the imported well-known types too; files come in dependency order.
        for file in fds.file:
            self.pool.Add(file)
        self.classes = {
            name: message_factory.GetMessageClass(self.pool.FindMessageTypeByName("sdk.v1." + name))
            for name in SCHEMA_VERSIONS
        }

    def new(self, name, **fields):
        return self.classes[name](**fields)

    def enum(self, enum_name, value_name):
        return self.pool.FindEnumTypeByName("sdk.v1." + enum_name).values_by_name[value_name].number

    @staticmethod
    def schema(name):
        return "urn:sdk:schema:sdk.v1.%s:v%d" % (name, SCHEMA_VERSIONS[name])

    # ---- encoding -------------------------------------------------------------

    def encode(self, message, content_type):
        if content_type == JSON:
            return json_format.MessageToJson(message, indent=None).encode()
        if content_type == PROTOBUF:
            return message.SerializeToString(deterministic=True)
        if content_type == MSGPACK:
            import msgpack

            return msgpack.packb(_to_msgpack(message), use_bin_type=True)
        raise ValueError("unknown content type %r" % content_type)

    # ---- decoding -------------------------------------------------------------

    def decode(self, name, data, content_type):
        """Decodes `data` strictly; raises Mismatch naming what is wrong."""
        message = self.classes[name]()
        try:
            if content_type == JSON:
                json_format.Parse(data.decode("utf-8"), message, ignore_unknown_fields=False)
            elif content_type == PROTOBUF:
                message.ParseFromString(data)
            elif content_type == MSGPACK:
                import msgpack

                obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
                _from_msgpack(message, obj, name)
            else:
                raise Mismatch("unexpected content type %r" % content_type)
        except Mismatch:
            raise
        except Exception as e:  # a parser's own error: report it as a mismatch
            raise Mismatch("cannot decode %s from %s: %s: %s" % (name, content_type, type(e).__name__, e)) from e
        return message


# ---- MessagePack, as crates/sdk-codec writes it ---------------------------------


def _is_map(field):
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _to_msgpack(message):
    out = {}
    for field, value in message.ListFields():
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.json_name] = {k: _scalar_to_msgpack(value_field, v) for k, v in value.items()}
        elif field.is_repeated and field.type == FieldDescriptor.TYPE_FLOAT:
            out[field.json_name] = struct.pack("<%df" % len(value), *value)
        elif field.is_repeated:
            out[field.json_name] = [_scalar_to_msgpack(field, v) for v in value]
        else:
            out[field.json_name] = _scalar_to_msgpack(field, value)
    return out


def _scalar_to_msgpack(field, value):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        full = field.message_type.full_name
        if full == "google.protobuf.Timestamp":
            return value.ToJsonString()
        if full == "google.protobuf.Struct":
            return json_format.MessageToDict(value)
        return _to_msgpack(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    return value


_INT_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}


def _from_msgpack(message, obj, path):
    if not isinstance(obj, dict):
        raise Mismatch("%s: expected a MessagePack map, found %s" % (path, type(obj).__name__))
    fields = {f.json_name: f for f in message.DESCRIPTOR.fields}
    for key, value in obj.items():
        field = fields.get(key)
        where = "%s.%s" % (path, key)
        if field is None:
            raise Mismatch(
                "%s: unknown key (expected the lowerCamelCase names %s)" % (where, sorted(fields))
            )
        if value is None:
            # The Rust writer skips absent optional messages rather than writing nil.
            raise Mismatch("%s: nil where the Rust codec leaves the key out" % where)
        if _is_map(field):
            if not isinstance(value, dict):
                raise Mismatch("%s: expected a map, found %s" % (where, type(value).__name__))
            target = getattr(message, field.name)
            for k, v in value.items():
                if not isinstance(k, str) or not isinstance(v, str):
                    raise Mismatch("%s: expected string keys and values, found %r: %r" % (where, k, v))
                target[k] = v
        elif field.is_repeated and field.type == FieldDescriptor.TYPE_FLOAT:
            if not isinstance(value, bytes):
                raise Mismatch(
                    "%s: expected a bin of little-endian f32, found %s" % (where, type(value).__name__)
                )
            if len(value) % 4:
                raise Mismatch("%s: a bin of %d bytes is not whole f32 values" % (where, len(value)))
            getattr(message, field.name).extend(struct.unpack("<%df" % (len(value) // 4), value))
        elif field.is_repeated:
            if not isinstance(value, list):
                raise Mismatch("%s: expected an array, found %s" % (where, type(value).__name__))
            for i, item in enumerate(value):
                _append(message, field, item, "%s[%d]" % (where, i))
        else:
            _set(message, field, value, where)


def _check_scalar(field, value, where):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        ok = isinstance(value, str)
    elif t == FieldDescriptor.TYPE_BOOL:
        ok = isinstance(value, bool)
    elif t in _INT_TYPES:
        # 64-bit integers are native integers in MessagePack (strings only in JSON).
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        ok = isinstance(value, float)
    elif t == FieldDescriptor.TYPE_BYTES:
        ok = isinstance(value, bytes)
    else:
        ok = False
    if not ok:
        raise Mismatch("%s: %r (%s) does not fit a %s field" % (where, value, type(value).__name__, _type_name(t)))


def _type_name(t):
    for name in dir(FieldDescriptor):
        if name.startswith("TYPE_") and getattr(FieldDescriptor, name) == t:
            return name[5:].lower()
    return str(t)


def _enum_number(field, value, where):
    if not isinstance(value, str):
        raise Mismatch("%s: enums are written by name, found %r" % (where, value))
    known = field.enum_type.values_by_name.get(value)
    if known is None:
        raise Mismatch("%s: %r is not a value of %s" % (where, value, field.enum_type.full_name))
    return known.number


def _set(message, field, value, where):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        target = getattr(message, field.name)
        _fill_message(target, value, where)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        setattr(message, field.name, _enum_number(field, value, where))
    else:
        _check_scalar(field, value, where)
        setattr(message, field.name, value)


def _append(message, field, value, where):
    target = getattr(message, field.name)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        _fill_message(target.add(), value, where)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        target.append(_enum_number(field, value, where))
    else:
        _check_scalar(field, value, where)
        target.append(value)


def _fill_message(target, value, where):
    full = target.DESCRIPTOR.full_name
    target.SetInParent()
    if full == "google.protobuf.Timestamp":
        if not isinstance(value, str):
            raise Mismatch("%s: a Timestamp is an RFC 3339 string, found %r" % (where, value))
        try:
            target.FromJsonString(value)
        except ValueError as e:
            raise Mismatch("%s: %r is not an RFC 3339 timestamp: %s" % (where, value, e)) from e
    elif full == "google.protobuf.Struct":
        if not isinstance(value, dict):
            raise Mismatch("%s: a Struct is a map, found %r" % (where, value))
        target.update(value)
    else:
        _from_msgpack(target, value, where)


# ---- comparison ---------------------------------------------------------------


def f32_bits(values):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in values]


def require_equal(what, actual, expected):
    """Raises Mismatch with both values in text form unless the messages are equal."""
    if actual != expected:
        raise Mismatch(
            "%s differs\n--- got\n%s--- expected\n%s"
            % (what, text_format.MessageToString(actual), text_format.MessageToString(expected))
        )


def canonical_json(message):
    """The proto3 JSON form of `message` with every field printed, as the Rust codec
    writes it (unset optional messages left out)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def require_canonical_json(what, raw, expected):
    """`raw` (JSON bytes from the Rust side) must be exactly the proto3 JSON mapping of
    `expected`: the same keys, the same JSON types (64-bit integers as strings, enums by
    name, timestamps as RFC 3339), the same values. float fields compare as f32, since
    two correct writers may print a float32 with different digits."""
    got = json.loads(raw)
    want = canonical_json(expected)
    got_n = _normalise(expected.DESCRIPTOR, got)
    want_n = _normalise(expected.DESCRIPTOR, want)
    if got_n != want_n:
        raise Mismatch(
            "%s is not the proto3 JSON mapping\n--- got\n%s\n--- expected\n%s"
            % (what, json.dumps(got, sort_keys=True), json.dumps(want, sort_keys=True))
        )


def _normalise(descriptor, obj):
    if not isinstance(obj, dict):
        return obj
    fields = {f.json_name: f for f in descriptor.fields}
    out = {}
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            out[key] = ("unknown field", value)
        elif field.type == FieldDescriptor.TYPE_FLOAT and field.is_repeated and isinstance(value, list):
            out[key] = [("f32", b) for b in f32_bits(value)] if all(_is_number(v) for v in value) else value
        elif field.type == FieldDescriptor.TYPE_FLOAT and _is_number(value):
            out[key] = ("f32", f32_bits([value])[0])
        elif (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and not _is_map(field)
            and field.message_type.full_name.startswith("sdk.")
        ):
            if field.is_repeated and isinstance(value, list):
                out[key] = [_normalise(field.message_type, v) for v in value]
            else:
                out[key] = _normalise(field.message_type, value)
        else:
            out[key] = value
    return out


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---- CloudEvents in binary mode -------------------------------------------------


def new_id():
    return uuid.uuid4().hex


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ce_headers(source, event_type, tenant, content_type=None, schema=None):
    headers = {
        "ce-specversion": "1.0",
        "ce-id": new_id(),
        "ce-source": source,
        "ce-type": event_type,
        "ce-time": now(),
        "ce-tenantid": tenant,
    }
    if content_type:
        headers["ce-datacontenttype"] = content_type
    if schema:
        headers["ce-dataschema"] = schema
    return headers


def header(headers, name):
    """A header value by name in any case; None when absent."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None
