/*
 * wire.c: a pre-decoding scan of protobuf wire format.
 *
 * protobuf-c decodes nested messages recursively and has no depth limit, so a small hostile file
 * of nested length-delimited fields could exhaust the stack. This scan walks the bytes once, with
 * the generated descriptors telling which fields are messages, and refuses malformed framing and
 * nesting deeper than AIM_ONNX_MAX_DEPTH before protobuf-c sees the data.
 */
#include "onnx/onnx.h"

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LENGTH = 2, WIRE_FIXED32 = 5 };

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *value) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *value = v;
            return true;
        }
    }
    return false;
}

static aim_status scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                       int depth) {
    if (depth > AIM_ONNX_MAX_DEPTH)
        return aim_error(AIM_ERR_LIMIT, "messages nested deeper than %d levels",
                         AIM_ONNX_MAX_DEPTH);
    while (p < end) {
        uint64_t key, value;
        if (!read_varint(&p, end, &key))
            return aim_error(AIM_ERR_PARSE, "truncated field key in %s", desc->name);
        uint64_t number = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        if (number == 0 || number > 536870911u)
            return aim_error(AIM_ERR_PARSE, "invalid field number in %s", desc->name);
        switch (wire) {
        case WIRE_VARINT:
            if (!read_varint(&p, end, &value))
                return aim_error(AIM_ERR_PARSE, "truncated varint in %s", desc->name);
            break;
        case WIRE_FIXED64:
            if (end - p < 8) return aim_error(AIM_ERR_PARSE, "truncated field in %s", desc->name);
            p += 8;
            break;
        case WIRE_FIXED32:
            if (end - p < 4) return aim_error(AIM_ERR_PARSE, "truncated field in %s", desc->name);
            p += 4;
            break;
        case WIRE_LENGTH: {
            if (!read_varint(&p, end, &value) || value > (uint64_t)(end - p))
                return aim_error(AIM_ERR_PARSE, "field %llu of %s runs past the end of the data",
                                 (unsigned long long)number, desc->name);
            const ProtobufCFieldDescriptor *field =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
            if (field && field->type == PROTOBUF_C_TYPE_MESSAGE) {
                aim_status st = scan(field->descriptor, p, p + value, depth + 1);
                if (st != AIM_OK) return st;
            }
            p += value;
            break;
        }
        default:
            return aim_error(AIM_ERR_PARSE, "unsupported wire type %u in %s", wire, desc->name);
        }
    }
    return AIM_OK;
}

aim_status aim_onnx_prescan(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                            size_t size) {
    return scan(desc, data, data + size, 0);
}
