"""HTTP routes of the proofs domain: submitting proof, reading submissions and their screenshots."""

from __future__ import annotations

from flask import Response, current_app, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.db.clock import utcnow
from marketplace.errors import InvalidInput
from marketplace.http.blueprint import Blueprint
from marketplace.http.client import client_device
from marketplace.http.inputs import refuse_nameless_parts, refuse_unstorable
from marketplace.http.problems import field_errors
from marketplace.http.route_facts import accepts_upload, rate_limited
from marketplace.proofs import schemas, service
from workers import validation as validation_jobs

blp = Blueprint("proofs", __name__, description="Proof submissions and their checks")

_SUBMISSION_BODY = {
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object",
            "properties": {
                "screenshot": {"type": "string", "format": "binary"},
                "link": {"type": "string"}, "text": {"type": "string"},
                "captured_at": {"type": "string", "format": "date-time"},
            },
        }},
        "application/json": {"schema": schemas.SubmissionIn},
    },
}


def _read_proof() -> tuple[dict, service.Upload | None]:
    """The proof fields and the screenshot of a JSON or multipart request (parsed, not decoded)."""
    upload = None
    if request.mimetype == "multipart/form-data":
        refuse_nameless_parts()
        fields = request.form.to_dict()
        refuse_unstorable(request.form.items(multi=True), "Text", "form")
        if "screenshot" in fields:
            raise InvalidInput.field("screenshot", "Send the screenshot as a file part, not a text field.")
        files = request.files.getlist("screenshot")
        if len(files) > 1:
            raise InvalidInput.field("screenshot", "Send one screenshot.")
        unknown = set(request.files) - {"screenshot"}
        if unknown:
            raise InvalidInput.field(sorted(unknown)[0], "Unknown field.")
        if files:
            limit = current_app.config["MAX_UPLOAD_BYTES"]
            data = files[0].stream.read(limit + 1)
            if len(data) > limit:
                raise RequestEntityTooLarge()
            upload = service.Upload(data)
    elif request.content_length or request.headers.get("Transfer-Encoding") == "chunked":
        fields = request.get_json()
        if not isinstance(fields, dict):
            raise InvalidInput("The body must be a JSON object.", errors={"_schema": ["Must be an object."]})
    else:
        fields = {}
    try:
        return schemas.SubmissionIn().load(fields), upload
    except ValidationError as err:
        errors = field_errors(err.messages)
        name, messages = next(iter(errors.items()))
        raise InvalidInput(f"{name}: {messages[0]}", errors=errors) from None


@blp.route("/v1/tasks/<string:task_id>/submissions", methods=["POST"])
@role_required("worker")
@blp.response(202, schemas.SubmissionOut)
@blp.doc(security=BEARER, requestBody=_SUBMISSION_BODY, description=(
    "Submit proof for a task you hold: multipart/form-data (`screenshot` file, `link`, `text`, "
    "`captured_at`) or JSON without the file. 202 with status `validating`: the checks run in a "
    "background job. 404 for a task that is not yours, 409 when the claim is not active (expired, "
    "released, already submitted), 413 over MAX_UPLOAD_BYTES, 422 when a required part is missing."))
@accepts_upload
@rate_limited
def submit_proof(task_id):
    # When the request arrived, before any hook read its body: an upload begun in time is on time.
    received_at = g.get("received_at") or utcnow()
    proof, upload = _read_proof()
    submission = service.submit(current_principal().id, task_id, proof, upload, received_at=received_at,
                                seen_from=client_device())
    validation_jobs.enqueue_validation(submission.id)
    return service.present([submission], current_principal())[0]


@blp.route("/v1/submissions/<string:submission_id>", methods=["GET"])
@role_required("worker", "brand", "admin")
@scope_required("briefs:read")
@blp.response(200, schemas.SubmissionOut)
@blp.doc(security=BEARER, description="Status and every check's result. Visible to its worker, the brief's "
         "brand and admins; anyone else gets 404.")
def get_submission(submission_id):
    principal = current_principal()
    return service.present([service.visible_submission(principal, submission_id)], principal)[0]


@blp.route("/v1/submissions/<string:submission_id>/screenshot", methods=["GET"])
@role_required("worker", "brand", "admin")
@scope_required("briefs:read")
@blp.arguments(schemas.ScreenshotArgs(), location="query")
@blp.response(200, description="The stored screenshot, served under its sniffed content type, or its thumbnail "
              "(image/png).")
@blp.alt_response(422, description="?size=thumbnail of an upload that is no decodable image (no-preview).")
@blp.doc(security=BEARER, summary="A submission's screenshot, or its thumbnail",
         responses={"200": {"description": "The screenshot's bytes.", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                       "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                       "image/webp": {"schema": {"type": "string", "format": "binary"}}}}})
def get_screenshot(args, submission_id):
    if args["size"] == "thumbnail":
        return _screenshot_response(service.screenshot_thumbnail(current_principal(), submission_id))
    return _screenshot_response(service.screenshot_file(current_principal(), submission_id))


@blp.route("/v1/shared/screenshots/<string:submission_id>", methods=["GET"])
@blp.arguments(schemas.SharedScreenshotArgs(), location="query")
@blp.response(200, description="The stored screenshot, served under its sniffed content type.")
@blp.alt_response(404, description="A link that is forged, altered or expired.")
@blp.doc(summary="A screenshot, by its signed link", description="A screenshot link that needs no credentials, as the content bank's CSV carries (a "
         "spreadsheet cannot send a bearer token): signed, and valid for 7 days from the export.",
         responses={"200": {"description": "The screenshot's bytes.", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                       "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                       "image/webp": {"schema": {"type": "string", "format": "binary"}}}}})
def get_shared_screenshot(args, submission_id):
    return _screenshot_response(service.shared_screenshot_file(submission_id, args["expires"], args["signature"]))


def _screenshot_response(stored: service.StoredFile) -> Response:
    content_type = stored.content_type
    response = Response(stored.chunks, mimetype=content_type, direct_passthrough=True)
    response.content_length = stored.length
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline" if content_type.startswith("image/") else "attachment"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blp.route("/v1/me/submissions", methods=["GET"])
@role_required("worker")
@blp.arguments(schemas.SubmissionListArgs(), location="query")
@blp.response(200, schemas.SubmissionPage)
@blp.doc(security=BEARER, description="Your submissions, newest first.")
def my_submissions(args):
    rows, next_cursor = service.list_own(current_principal().id, **args)
    return {"data": service.present(rows, current_principal()), "next_cursor": next_cursor}
