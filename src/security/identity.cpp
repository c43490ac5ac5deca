// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/identity.h"

namespace cvdeploy::security {

const char* AuthMethodName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kApiKey:
      return "api_key";
    case AuthMethod::kJwt:
      return "jwt";
    case AuthMethod::kSession:
      return "session";
    case AuthMethod::kClientCertificate:
      return "mtls";
  }
  return "unknown";
}

}  // namespace cvdeploy::security
