//! The OpenAPI 3.1 description of the API, written here next to the handlers and served at
//! `/openapi.json`. `schemas/openapi.yaml` is generated from it ([`to_yaml`]); the tests
//! fail when the file, the routes ([`crate::ROUTES`]) or the problem types
//! ([`crate::problem::Kind::ALL`]) drift from it. Regenerate the file with
//! `TAMGA_UPDATE_OPENAPI=1 cargo test -p tamga-gateway --test openapi`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::problem::Kind;
use crate::status::STATUSES;

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn retry_after_problem(description: &str) -> Value {
    let mut r = problem_response(description);
    r["headers"] = json!({ "Retry-After": { "$ref": "#/components/headers/RetryAfter" } });
    r
}

fn id_parameter() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "The declaration id the submission answered with.",
        "schema": { "type": "string", "minLength": 1, "maxLength": 128 }
    })
}

fn fetch(summary: &str, content_type: &str, schema: Value, op: &str) -> Value {
    json!({
        "get": {
            "operationId": op,
            "summary": summary,
            "parameters": [id_parameter()],
            "responses": {
                "200": { "description": "The artefact.", "content": { content_type: { "schema": schema } } },
                "401": { "$ref": "#/components/responses/Unauthorized" },
                "404": { "$ref": "#/components/responses/NotFound" },
                "409": retry_after_problem("Not decided yet (retry later), or — for /document — rejected: no counter-signed document; `reason` says why."),
                "503": { "$ref": "#/components/responses/Unavailable" }
            }
        }
    })
}

/// The checkpoint's operations (served by the pages' router, [`crate::pages::CHECK_ROUTES`]).
fn check_paths() -> Value {
    json!({
        "/v1/checks": {
            "post": {
                "operationId": "createCheck",
                "summary": "Check a receipt at a checkpoint, and record the check",
                "description": "For checkpoint officers and auditors: authenticated with a *page* token (`tamga gateway token create --role officer|auditor`), not a broker's. The input is a receipt's QR payload (`TMG1:…`), a receipt id (`rcpt-…`), a declaration id or an LRN. The check is recorded as a `checked` audit event (`checkpoint`, `officer`, `bundleVersion`, `result`, `offline`) with a signed check record (`GET /v1/checks/{id}`). `result` is `accepted` (green), `rejected` or `not_authentic` (red, with `reason`), or `could_not_check` (amber: unknown authority, stale trust material, no record, not decided yet, or `reason: already_presented` — the declaration was presented before at another checkpoint or after it left, see `repeatedOf`). The declaration and its consignment are given only for an authentic receipt of an accepted declaration.",
                "security": [ { "bearerAuth": [] } ],
                "requestBody": {
                    "required": true,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CheckRequest" } } }
                },
                "responses": {
                    "201": {
                        "description": "Checked and recorded.",
                        "headers": { "Location": { "description": "/v1/checks/{id}: the signed check record.", "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Check" } } }
                    },
                    "400": problem_response("Not JSON, no input, or a checkpoint or device this site does not accept."),
                    "401": { "$ref": "#/components/responses/Unauthorized" },
                    "403": problem_response("The page token's role may not check (an analyst's)."),
                    "500": problem_response("The check could not be recorded (no authority key)."),
                    "503": { "$ref": "#/components/responses/Unavailable" }
                }
            }
        },
        "/v1/checks/offline": {
            "post": {
                "operationId": "uploadOfflineChecks",
                "summary": "Record checks made offline (an offline check log)",
                "description": "One JSON object per line, as `tamga receipt verify-qr --log` writes it and the checkpoint page's offline verifier keeps it (`schemas/check.md`). Each line becomes a `checked` event marked `offline: true` by the uploading officer; a line recorded before (the same log uploaded again) is not recorded twice.",
                "security": [ { "bearerAuth": [] } ],
                "requestBody": {
                    "required": true,
                    "content": { "text/plain": { "schema": { "type": "string", "description": "One JSON object per line (the offline check log)." } } }
                },
                "responses": {
                    "200": { "description": "What was recorded.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Upload" } } } },
                    "400": problem_response("Not UTF-8, or larger than 4 MiB."),
                    "401": { "$ref": "#/components/responses/Unauthorized" },
                    "403": problem_response("The page token's role may not check (an analyst's)."),
                    "500": problem_response("The checks could not be recorded (no authority key)."),
                    "503": { "$ref": "#/components/responses/Unavailable" }
                }
            }
        },
        "/v1/checks/{id}": {
            "get": {
                "operationId": "getCheckRecord",
                "summary": "The signed check record (schemas/check.xsd)",
                "description": "XML signed with the site's authority key (enveloped XML-DSig, XAdES-B-B), like the receipt: `xmlsec1 --verify` checks it. Any page token (officer, auditor, analyst).",
                "security": [ { "bearerAuth": [] } ],
                "parameters": [ { "name": "id", "in": "path", "required": true, "description": "The check's id (`chk-` and 32 hex digits).", "schema": { "type": "string", "minLength": 1, "maxLength": 128 } } ],
                "responses": {
                    "200": { "description": "The record.", "content": { "application/xml": { "schema": { "type": "string" } } } },
                    "401": { "$ref": "#/components/responses/Unauthorized" },
                    "404": problem_response("No check has this id."),
                    "503": { "$ref": "#/components/responses/Unavailable" }
                }
            }
        }
    })
}

/// The checkpoint's schemas.
fn check_schemas() -> Value {
    json!({
        "CheckRequest": {
            "type": "object",
            "required": ["input", "checkpoint"],
            "properties": {
                "input": { "type": "string", "minLength": 1, "maxLength": 8192, "description": "A QR payload (`TMG1:…`), a receipt id (`rcpt-…`), a declaration id or an LRN." },
                "checkpoint": { "type": "string", "minLength": 1, "maxLength": 64, "description": "Where: one of `[gateway.checks] checkpoints` when the site lists them." },
                "device": { "type": "string", "minLength": 1, "maxLength": 64, "description": "The device's label (default `api`)." }
            }
        },
        "Check": {
            "type": "object",
            "required": ["id", "result", "checkpoint", "officer", "device", "offline", "checkedAt", "links"],
            "properties": {
                "id": { "type": "string", "pattern": "^chk-[0-9a-f]{32}$" },
                "result": { "type": "string", "enum": ["accepted", "rejected", "not_authentic", "could_not_check"] },
                "reason": { "type": ["string", "null"], "description": "Why, when not accepted: the rejection's reason code, the QR's (`bad_signature`, `unknown_authority`, …), or `not_found`, `not_decided`, `already_presented`." },
                "checkpoint": { "type": "string" },
                "officer": { "type": "string" },
                "device": { "type": "string" },
                "offline": { "type": "boolean" },
                "bundleVersion": { "type": ["integer", "null"], "description": "The trust material's version (Unix seconds)." },
                "checkedAt": { "type": "string", "format": "date-time" },
                "repeatedOf": {
                    "type": ["object", "null"],
                    "description": "The earlier presentation that made this check amber.",
                    "properties": {
                        "checkId": { "type": "string" },
                        "checkpoint": { "type": "string" },
                        "at": { "type": "string", "format": "date-time" }
                    }
                },
                "declaration": {
                    "type": ["object", "null"],
                    "properties": {
                        "receiptId": { "type": "string" },
                        "documentSha256": { "type": "string" },
                        "lrn": { "type": ["string", "null"] },
                        "origin": { "type": "string" },
                        "destination": { "type": "string" }
                    }
                },
                "consignment": {
                    "type": "array",
                    "description": "What to match against the truck: lrn, vehicle, containers, seals, gross-mass, hs-codes.",
                    "items": { "type": "object", "required": ["field", "value"], "properties": { "field": { "type": "string" }, "value": { "type": "string" } } }
                },
                "links": {
                    "type": "object",
                    "required": ["record", "card"],
                    "properties": { "record": { "type": "string" }, "card": { "type": "string" } }
                }
            }
        },
        "Upload": {
            "type": "object",
            "required": ["recorded", "alreadyRecorded", "refused"],
            "properties": {
                "recorded": { "type": "integer", "description": "Checks recorded now." },
                "alreadyRecorded": { "type": "integer", "description": "Checks recorded by an earlier upload." },
                "refused": {
                    "type": "array",
                    "items": { "type": "object", "required": ["line", "error"], "properties": { "line": { "type": "integer" }, "error": { "type": "string" } } }
                }
            }
        }
    })
}

/// The OpenAPI document.
pub fn spec() -> Value {
    let problem_types: Vec<Value> = Kind::ALL.iter().map(|k| json!(k.type_uri())).collect();
    let mut spec = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tamga broker gateway",
            "version": "1.0.0",
            "description": "Submit signed customs declarations, follow their status, fetch the signed receipt, the counter-signed document and the validation report. Every request is authenticated: `Authorization: Bearer TOKEN` (from `tamga gateway token create`), or — when the site configures `[gateway.tls] client_ca` — a TLS client certificate from that CA whose subject CN is the broker's name (its C, when present, restricts the origin as `--country` does). With both, they must name the same broker. Status changes are pulled from `/v1/notifications` or pushed to the broker's callback (see `webhooks`). Errors are RFC 9457 problem details with a stable `type` per error."
        },
        "security": [ { "bearerAuth": [] }, { "mutualTLS": [] } ],
        "paths": {
            "/v1/declarations": {
                "post": {
                    "operationId": "submitDeclaration",
                    "summary": "Submit a signed declaration",
                    "description": "Published to `tamga.inbound` with routing key `<origin>.<destination>` (lower case) once the broker confirmed, then 202. The same `Idempotency-Key` with the same bytes and corridor answers the same 202 and id (header `Idempotent-Replayed: true`) and publishes nothing again; with other bytes: 422. The same bytes under a new key get a new id; the pipeline recognises the bytes and answers with the first decision (`duplicateOf` in the status).",
                    "parameters": [
                        { "name": "X-Tamga-Origin", "in": "header", "required": true, "description": "Declared origin, ISO 3166 alpha-2.", "schema": { "type": "string", "pattern": "^[A-Za-z]{2}$" } },
                        { "name": "X-Tamga-Destination", "in": "header", "required": true, "description": "Destination, ISO 3166 alpha-2.", "schema": { "type": "string", "pattern": "^[A-Za-z]{2}$" } },
                        { "name": "Idempotency-Key", "in": "header", "required": true, "description": "Unique per declaration; reuse it only to retry (IETF draft-ietf-httpapi-idempotency-key-header).", "schema": { "type": "string", "pattern": "^[\\x21-\\x7E]([\\x20-\\x7E]{0,253}[\\x21-\\x7E])?$" } }
                    ],
                    "requestBody": {
                        "required": true,
                        "content": { "application/xml": { "schema": { "type": "string", "description": "The signed declaration, as signed (at most the policy's input limit, 16 MiB by default)." } } }
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted: published with a confirm.",
                            "headers": { "Location": { "description": "/v1/declarations/{id}", "schema": { "type": "string" } } },
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Accepted" } } }
                        },
                        "400": problem_response("No Idempotency-Key, a bad corridor header, or an empty body."),
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "403": problem_response("The token may not submit from this origin."),
                        "413": problem_response("Larger than the policy's input limit."),
                        "415": problem_response("Not application/xml."),
                        "422": problem_response("The Idempotency-Key was used with other bytes or another corridor."),
                        "429": retry_after_problem("Above the broker's rate."),
                        "503": { "$ref": "#/components/responses/Unavailable" }
                    }
                },
                "get": {
                    "operationId": "listDeclarations",
                    "summary": "The broker's own declarations, oldest first, by cursor",
                    "parameters": [
                        { "name": "lrn", "in": "query", "required": false, "schema": { "type": "string" } },
                        { "name": "status", "in": "query", "required": false, "schema": { "type": "string", "enum": STATUSES } },
                        { "name": "since", "in": "query", "required": false, "description": "RFC 3339: submitted at or after.", "schema": { "type": "string", "format": "date-time" } },
                        { "name": "cursor", "in": "query", "required": false, "description": "`next` of the previous page.", "schema": { "type": "string" } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": crate::api::MAX_PAGE, "default": crate::api::DEFAULT_PAGE } }
                    ],
                    "responses": {
                        "200": { "description": "One page.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/List" } } } },
                        "400": problem_response("A query parameter that cannot be understood."),
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "503": { "$ref": "#/components/responses/Unavailable" }
                    }
                }
            },
            "/v1/declarations/{id}": {
                "get": {
                    "operationId": "getDeclaration",
                    "summary": "Status, history and identity of a declaration",
                    "parameters": [id_parameter()],
                    "responses": {
                        "200": { "description": "The status.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } } },
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "404": { "$ref": "#/components/responses/NotFound" },
                        "503": { "$ref": "#/components/responses/Unavailable" }
                    }
                }
            },
            "/v1/declarations/{id}/receipt": fetch("The signed receipt (acceptance or rejection)", "application/xml", json!({ "type": "string" }), "getReceipt"),
            "/v1/declarations/{id}/document": fetch("The counter-signed declaration (accepted only)", "application/xml", json!({ "type": "string" }), "getDocument"),
            "/v1/declarations/{id}/report": fetch("The validation report (schemas/validation-report.schema.json)", "application/json", json!({ "type": "object" }), "getReport"),
            "/v1/notifications": {
                "get": {
                    "operationId": "getNotifications",
                    "summary": "Status changes of the broker's declarations, oldest first (long-poll)",
                    "description": "Every status a declaration reaches, once, in order (kept: never deleted). Pass the previous answer's `next` as `after`; with `wait`, an empty answer is held up to that many seconds until something arrives.",
                    "parameters": [
                        { "name": "after", "in": "query", "required": false, "description": "`next` of the previous answer (0: from the start).", "schema": { "type": "integer", "minimum": 0 } },
                        { "name": "wait", "in": "query", "required": false, "description": "Seconds to hold an empty answer.", "schema": { "type": "integer", "minimum": 0, "maximum": crate::api::MAX_WAIT_SECS, "default": 0 } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": crate::api::MAX_PAGE, "default": crate::api::DEFAULT_PAGE } }
                    ],
                    "responses": {
                        "200": { "description": "The next notifications (possibly none).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Notifications" } } } },
                        "400": problem_response("A query parameter that cannot be understood."),
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "503": { "$ref": "#/components/responses/Unavailable" }
                    }
                }
            },
            "/v1/callback": {
                "get": {
                    "operationId": "getCallback",
                    "summary": "The broker's push callback: where, delivered through which notification, failures",
                    "description": "Set by the site's operator (`tamga gateway callback set --broker NAME --url URL`, which prints the HMAC secret once). A failing receiver shows here (`healthy: false`, `failuresSinceLastDelivery`, `lastAttempt`) and in the `tamga_gateway_callback_*` metrics; the notifications wait for it (`pending`) and are also in `/v1/notifications`.",
                    "responses": {
                        "200": { "description": "The callback's state (`configured: false` when none).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Callback" } } } },
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "503": { "$ref": "#/components/responses/Unavailable" }
                    }
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } }
                    }
                }
            }
        },
        "webhooks": {
            "notifications": {
                "post": {
                    "operationId": "pushNotifications",
                    "summary": "Status changes pushed to the broker's callback URL",
                    "description": "The same JSON as `GET /v1/notifications` (up to 50 items, oldest first), POSTed to the URL of `tamga gateway callback set`. Verify `X-Tamga-Signature` = `sha256=` + hex HMAC-SHA256(secret, X-Tamga-Timestamp + \".\" + raw body) in constant time, and refuse a timestamp more than 5 minutes away from now (a replay). Answer 2xx once stored; anything else, or no answer within the timeout, is retried with exponential backoff, re-signed. At least once: de-duplicate on each item's `seq`, the notification's stable id.",
                    "security": [],
                    "parameters": [
                        { "name": "X-Tamga-Timestamp", "in": "header", "required": true, "description": "Unix seconds of this attempt; covered by the signature.", "schema": { "type": "integer" } },
                        { "name": "X-Tamga-Signature", "in": "header", "required": true, "description": "`sha256=<hex HMAC-SHA256(secret, \"<timestamp>.<body>\")>`.", "schema": { "type": "string", "pattern": "^sha256=[0-9a-f]{64}$" } }
                    ],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Notifications" } } }
                    },
                    "responses": {
                        "2XX": { "description": "Delivered: the cursor moves past these items." },
                        "default": { "description": "Not delivered: retried later with backoff." }
                    }
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "A token from `tamga gateway token create`." },
                "mutualTLS": { "type": "mutualTLS", "description": "A client certificate from a CA of `[gateway.tls] client_ca`; its subject CN is the broker's name." }
            },
            "headers": {
                "RetryAfter": { "description": "Seconds to wait.", "schema": { "type": "integer", "minimum": 1 } }
            },
            "responses": {
                "Unauthorized": {
                    "description": "Missing, malformed, unknown or revoked token.",
                    "headers": { "WWW-Authenticate": { "schema": { "type": "string" } } },
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
                },
                "NotFound": problem_response("No such declaration for this broker (another broker's id included)."),
                "Unavailable": retry_after_problem("The message broker did not confirm, or the database is unavailable: retry (with the same Idempotency-Key).")
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": { "type": "string", "enum": problem_types },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" },
                        "reason": { "type": ["string", "null"], "description": "For rejections: the report's reason code." },
                        "subIndication": { "type": ["string", "null"] },
                        "limit": { "type": "integer" }
                    }
                },
                "Links": {
                    "type": "object",
                    "required": ["self"],
                    "properties": {
                        "self": { "type": "string" },
                        "receipt": { "type": "string" },
                        "document": { "type": "string" },
                        "report": { "type": "string" }
                    }
                },
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status", "links"],
                    "properties": {
                        "id": { "type": "string" },
                        "status": { "type": "string", "enum": STATUSES },
                        "links": { "$ref": "#/components/schemas/Links" }
                    }
                },
                "Status": {
                    "type": "object",
                    "required": ["id", "status", "broker", "submittedAt", "declaration", "history", "links"],
                    "properties": {
                        "id": { "type": "string" },
                        "status": { "type": "string", "enum": STATUSES },
                        "broker": { "type": "string" },
                        "submittedAt": { "type": "string", "format": "date-time" },
                        "duplicateOf": { "type": "string", "description": "The same bytes were submitted before under this id; its decision answers this one." },
                        "declaration": {
                            "type": "object",
                            "required": ["origin", "destination", "documentSha256"],
                            "properties": {
                                "lrn": { "type": ["string", "null"] },
                                "origin": { "type": "string" },
                                "destination": { "type": "string" },
                                "documentSha256": { "type": "string" }
                            }
                        },
                        "history": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["step", "at"],
                                "properties": {
                                    "step": { "type": "string", "description": "An audit stage: received, verified, rejected, countersigned, receipt_issued, forwarded, dead_lettered." },
                                    "at": { "type": "string", "format": "date-time" }
                                }
                            }
                        },
                        "indication": { "type": "string", "enum": ["TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE"] },
                        "subIndication": { "type": ["string", "null"] },
                        "reason": { "type": ["string", "null"], "description": "When rejected: the report's reason code." },
                        "message": { "type": "string" },
                        "qr": { "type": "string", "pattern": "^TMG1:", "description": "Once decided: the receipt's signed QR payload (schemas/qr.md)." },
                        "links": { "$ref": "#/components/schemas/Links" }
                    }
                },
                "Notifications": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["seq", "id", "status", "at", "links"],
                                "properties": {
                                    "seq": { "type": "integer" },
                                    "id": { "type": "string" },
                                    "status": { "type": "string", "enum": STATUSES },
                                    "at": { "type": "string", "format": "date-time" },
                                    "links": { "$ref": "#/components/schemas/Links" }
                                }
                            }
                        },
                        "next": { "type": "string", "description": "The cursor: pass it as `after`." }
                    }
                },
                "Callback": {
                    "type": "object",
                    "required": ["configured"],
                    "properties": {
                        "configured": { "type": "boolean" },
                        "url": { "type": "string" },
                        "since": { "type": "string", "format": "date-time", "description": "When this URL was set." },
                        "deliveredThrough": { "type": "string", "description": "The `seq` of the last notification the receiver took (a cursor of /v1/notifications)." },
                        "pending": { "type": "integer", "description": "Notifications not yet delivered." },
                        "lastDeliveredAt": { "type": ["string", "null"], "format": "date-time" },
                        "failuresSinceLastDelivery": { "type": "integer" },
                        "healthy": { "type": "boolean", "description": "No failure since the last delivery." },
                        "lastAttempt": {
                            "type": ["object", "null"],
                            "required": ["at", "delivered", "httpStatus", "error", "firstSeq", "lastSeq"],
                            "properties": {
                                "at": { "type": "string", "format": "date-time" },
                                "delivered": { "type": "boolean" },
                                "httpStatus": { "type": ["integer", "null"], "description": "The receiver's answer, if any." },
                                "error": { "type": ["string", "null"], "description": "Why it was not delivered." },
                                "firstSeq": { "type": "integer" },
                                "lastSeq": { "type": "integer" }
                            }
                        }
                    }
                },
                "List": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "status", "submittedAt", "origin", "destination", "documentSha256", "links"],
                                "properties": {
                                    "id": { "type": "string" },
                                    "status": { "type": "string", "enum": STATUSES },
                                    "submittedAt": { "type": "string", "format": "date-time" },
                                    "lrn": { "type": ["string", "null"] },
                                    "origin": { "type": "string" },
                                    "destination": { "type": "string" },
                                    "documentSha256": { "type": "string" },
                                    "links": { "$ref": "#/components/schemas/Links" }
                                }
                            }
                        },
                        "next": { "type": ["string", "null"], "description": "The cursor of the next page; null on the last." }
                    }
                }
            }
        }
    });
    // In two parts: one `json!` of everything exceeds the macro's recursion limit.
    for (section, extra) in [("paths", check_paths()), ("schemas", check_schemas())] {
        let target = if section == "paths" {
            &mut spec["paths"]
        } else {
            &mut spec["components"]["schemas"]
        };
        if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
            t.extend(e);
        }
    }
    spec
}

/// `spec()` as YAML: block style, every string double-quoted (a JSON string is a valid
/// YAML double-quoted scalar), keys in the order written.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::from(
        "# Generated from services/gateway/src/openapi.rs — do not edit; see that file.\n",
    );
    emit_map_or_list(v, 0, &mut out);
    out
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        && !k.bytes().all(|b| b.is_ascii_digit());
    if plain {
        k.to_owned()
    } else {
        scalar(&Value::String(k.to_owned()))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

fn emit_map_or_list(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => emit_map(map, indent, out),
        Value::Array(items) => {
            for item in items {
                if is_block(item) {
                    out.push_str(&pad);
                    out.push_str("-\n");
                    emit_map_or_list(item, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn emit_map(map: &Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in map {
        if is_block(v) {
            out.push_str(&format!("{pad}{}:\n", key(k)));
            emit_map_or_list(v, indent + 2, out);
        } else {
            out.push_str(&format!("{pad}{}: {}\n", key(k), scalar(v)));
        }
    }
}

pub(crate) async fn serve_json() -> Response {
    let mut r = (StatusCode::OK, spec().to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
