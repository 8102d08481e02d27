// Passkeys (WebAuthn) on the security page (adding one) and on the two-factor sign-in step (using one):
// identity/templates/identity/security.html and two_factor_verify.html. A static file, since the
// Content-Security-Policy runs no inline script. The server's options arrive as JSON with binary fields in
// base64url (py_webauthn's options_to_json); the browser's answer goes back the same way, in the form's
// hidden "credential" field, and the form is submitted normally.
(function () {
  "use strict";

  function toBytes(base64url) {
    const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4);
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken(form) {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function showError(form, message) {
    const box = form.parentElement.querySelector("[data-passkey-error]");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  async function fetchOptions(form) {
    const response = await fetch(form.dataset.optionsUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(form), "Accept": "application/json"},
    });
    if (!response.ok) throw new Error("csm could not start the passkey request (HTTP " + response.status + ").");
    return response.json();
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, {id: toBytes(c.id)}); });
  }

  function unsupported(form) {
    if (window.PublicKeyCredential && navigator.credentials) return false;
    showError(form, "This browser does not support passkeys.");
    return true;
  }

  function failed(form, error) {
    if (error && error.name === "InvalidStateError") {
      showError(form, "This device already holds one of your passkeys.");
      return;
    }
    const cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
    showError(form, cancelled ? "The passkey request was cancelled or timed out. Try again."
                              : (error && error.message) || "The passkey request failed.");
  }

  // Adding a passkey: the form's submit asks the browser to create one, then posts it with the name.
  const register = document.querySelector("[data-passkey-register]");
  if (register) {
    register.addEventListener("submit", async function (event) {
      const hidden = register.querySelector("input[name=credential]");
      if (hidden.value) return;  // the credential is in: let the form go
      event.preventDefault();
      if (unsupported(register) || !register.reportValidity()) return;
      showError(register, "");
      try {
        const options = await fetchOptions(register);
        options.challenge = toBytes(options.challenge);
        options.user.id = toBytes(options.user.id);
        options.excludeCredentials = descriptors(options.excludeCredentials);
        const credential = await navigator.credentials.create({publicKey: options});
        hidden.value = JSON.stringify({
          id: credential.id, rawId: toBase64url(credential.rawId), type: credential.type,
          authenticatorAttachment: credential.authenticatorAttachment || undefined,
          clientExtensionResults: credential.getClientExtensionResults(),
          response: {
            clientDataJSON: toBase64url(credential.response.clientDataJSON),
            attestationObject: toBase64url(credential.response.attestationObject),
            transports: credential.response.getTransports ? credential.response.getTransports() : [],
          },
        });
        register.submit();
      } catch (error) {
        failed(register, error);
      }
    });
  }

  // The two-factor step: "Use a passkey" asks the browser for an assertion and submits it.
  const verify = document.querySelector("[data-passkey-verify]");
  const button = verify && verify.querySelector("[data-passkey-button]");
  if (button) {
    button.addEventListener("click", async function () {
      if (unsupported(verify)) return;
      showError(verify, "");
      try {
        const options = await fetchOptions(verify);
        options.challenge = toBytes(options.challenge);
        options.allowCredentials = descriptors(options.allowCredentials);
        const assertion = await navigator.credentials.get({publicKey: options});
        verify.querySelector("input[name=credential]").value = JSON.stringify({
          id: assertion.id, rawId: toBase64url(assertion.rawId), type: assertion.type,
          authenticatorAttachment: assertion.authenticatorAttachment || undefined,
          clientExtensionResults: assertion.getClientExtensionResults(),
          response: {
            clientDataJSON: toBase64url(assertion.response.clientDataJSON),
            authenticatorData: toBase64url(assertion.response.authenticatorData),
            signature: toBase64url(assertion.response.signature),
            userHandle: assertion.response.userHandle ? toBase64url(assertion.response.userHandle) : undefined,
          },
        });
        verify.submit();
      } catch (error) {
        failed(verify, error);
      }
    });
  }
})();
