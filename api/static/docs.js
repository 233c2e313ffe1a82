// /docs: Swagger UI on the OpenAPI document. Started from this file, not inline: the pages'
// Content-Security-Policy allows scripts from this server only (script-src 'self').
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // no badge fetched from validator.swagger.io
    defaultModelsExpandDepth: 0,
  });
})();
