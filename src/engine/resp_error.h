// The one place where an Error becomes a RESP error reply: its category and code choose the
// reply's code word (the bus's NOHANDLER, TIMEOUT, BUSY, ... which clients match on; ERR for
// everything else), and the message follows on the same line.
#pragma once

#include <string>

#include "common/result.h"
#include "resp/reply_builder.h"

namespace shoal::engine {

// "CODE message". ReplyBuilder::Error replaces any '\r' or '\n' with a space when it is written.
std::string RespErrorText(const Error& e);
inline void ReplyError(resp::ReplyBuilder* out, const Error& e) { out->Error(RespErrorText(e)); }

}  // namespace shoal::engine
