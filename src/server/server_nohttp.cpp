// SPDX-License-Identifier: MIT
// serve() of a build without cpp-httplib (CMake found no libcpp-httplib-dev).
#include "server/server.h"

namespace lowbit::server {

Status serve(const ServerOptions&) {
    return make_error(ErrorCode::kUnsupported, "this build of lowbit has no HTTP server: install libcpp-httplib-dev "
                                               "(scripts/install-deps.sh) and rebuild");
}

} // namespace lowbit::server
