"""The one error model: every reason has an API status or is explicitly item-only, the statuses
the API answered before the model are unchanged, and every error class derives from
PosterflowError with a reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from posterflow import jobs, tokens
from posterflow.api.errors import ITEM_ONLY, STATUS, ApiError, response_of
from posterflow.crop import errors as crop_errors
from posterflow.errors import PosterflowError, Reason
from posterflow.formats import errors as format_errors
from posterflow.net import errors as net_errors
from posterflow.posters import errors as poster_errors
from posterflow.posters.templating import errors as template_errors
from posterflow.render import errors as render_errors
from posterflow.split.base import SplitFailed

# (code, status) as the API answered them before reasons were mapped in one table: literal
# statuses at the raise sites, PosterError's statuses for synchronous renders, the per-class
# handlers of the app.
BEFORE: dict[str, set[int]] = {
    "malformed_json": {400}, "invalid_encoding": {400}, "validation_error": {422}, "unsupported_media_type": {415},
    "payload_too_large": {413}, "too_deep": {422}, "number_out_of_range": {422}, "no_route": {404},
    "invalid_request": {422}, "invalid_limit": {422}, "invalid_cursor": {422}, "invalid_status": {422},
    "invalid_idempotency_key": {422}, "idempotency_key_reused": {422}, "idempotency_in_progress": {409},
    "not_found": {404}, "job_not_found": {404}, "batch_not_found": {404}, "template_not_found": {404},
    "no_archive": {404}, "archive_expired": {404}, "archive_not_ready": {409}, "batch_conflict": {409},
    "missing_token": {403}, "link_expired": {403}, "invalid_token": {403},
    "metadata_too_large": {413}, "too_many_items": {413}, "too_many_rows": {413}, "too_many_identifiers": {413},
    "too_many_images": {413}, "invalid_template": {422}, "invalid_csv": {422}, "columns_mismatch": {422},
    "no_rows": {422}, "invalid_image": {422}, "profile_source_not_configured": {503},
    "invalid_template_id": {422}, "template_invalid": {422}, "template_syntax_error": {422},
    "template_too_large": {413, 422}, "template_timeout": {422}, "template_too_deep": {422},
    "missing_placeholders": {422}, "template_error": {422}, "unsupported_output": {422},
    "javascript_disabled": {422}, "render_failed": {422, 502}, "timeout": {504}, "browser_crashed": {503},
    "overlay_not_found": {422}, "overlay_refused": {422}, "overlay_failed": {422},
}


def test_every_reason_has_a_status_or_is_item_only() -> None:
    answered, item_only = set(STATUS), set(ITEM_ONLY)
    assert answered.isdisjoint(item_only), answered & item_only
    assert answered | item_only == set(Reason), set(Reason) - answered - item_only


def test_the_statuses_the_api_answered_are_unchanged() -> None:
    now: dict[str, set[int]] = {}
    for reason, status in STATUS.items():
        now.setdefault(reason.code, set()).add(status)
    for code, statuses in BEFORE.items():
        assert now.get(code) == statuses, (code, now.get(code), statuses)


def test_a_code_with_two_statuses_is_two_reasons() -> None:
    assert Reason.TEMPLATE_OUTPUT_TOO_LARGE.code == Reason.TEMPLATE_TOO_LARGE.code == "template_too_large"
    assert (STATUS[Reason.TEMPLATE_TOO_LARGE], STATUS[Reason.TEMPLATE_OUTPUT_TOO_LARGE]) == (413, 422)
    assert Reason.RENDER_FUNCTION_FAILED.code == Reason.RENDER_FAILED.code == "render_failed"
    assert (STATUS[Reason.RENDER_FAILED], STATUS[Reason.RENDER_FUNCTION_FAILED]) == (422, 502)
    assert sum(r.code != r.value for r in Reason) == 2


@pytest.mark.parametrize("cls", [
    jobs.JobError, jobs.JobNotFound, jobs.ItemNotFound, jobs.JobStateConflict, jobs.ItemTooLarge, jobs.InvalidCursor,
    net_errors.FetchError, net_errors.FetchRefused, net_errors.FetchFailed, net_errors.SourceError,
    net_errors.SourceRefused, net_errors.SourceNotFound, net_errors.SourceUnreadable, net_errors.SourceChanged,
    net_errors.SourceTooLarge, crop_errors.PhotoError, crop_errors.SourceError, render_errors.RenderError,
    render_errors.RenderTimeout, render_errors.BrowserCrashed, render_errors.ChromiumNotFound,
    render_errors.UnsupportedSize, render_errors.UnsupportedFormat, format_errors.CsvError,
    format_errors.CsvRowLimitExceeded, format_errors.ZipError, format_errors.BadZip, format_errors.ZipBomb,
    format_errors.BadEntry, poster_errors.TemplateNotFound, poster_errors.InvalidTemplateId,
    poster_errors.OverlayError, poster_errors.PosterError, poster_errors.ProfileError, poster_errors.NotConfigured,
    template_errors.TemplateError, template_errors.TemplateSyntaxError, template_errors.TemplateTooLarge,
    template_errors.MissingPlaceholders, template_errors.TemplateRenderError, template_errors.TemplateOutputTooLarge,
    template_errors.TemplateTimeout, template_errors.TemplateTooDeep, tokens.TokenError, tokens.TokenInvalid,
    tokens.TokenExpired, SplitFailed, ApiError,
])
def test_every_error_class_is_a_posterflow_error_with_a_reason(cls: type[PosterflowError]) -> None:
    assert issubclass(cls, PosterflowError)
    assert isinstance(cls.reason, Reason) and cls.code == cls.reason.code


def test_the_response_carries_the_code_and_the_status_of_the_reason() -> None:
    resp = response_of(template_errors.TemplateOutputTooLarge("the document is over its budget"))
    assert resp.status_code == 422 and '"code": "template_too_large"' in str(resp.body)
    resp = response_of(jobs.JobNotFound("j1"))
    assert resp.status_code == 404 and '"message": "job j1 not found"' in str(resp.body)
    assert response_of(PosterflowError("a bug")).status_code == 500


def test_an_item_error_comes_with_its_code() -> None:
    with pytest.raises(ValidationError, match="error_code"):
        jobs.ItemOutcome(item_id=1, status=jobs.ItemStatus.FAILED, error="no code")
    outcome = jobs.ItemOutcome.failure(3, crop_errors.PhotoError(Reason.TRUNCATED, "the JPEG ends early"))
    assert (outcome.error_code, outcome.error, outcome.status) == ("truncated", "the JPEG ends early", "failed")
