"""The rules' ``lhc`` section: tags as LHC subjects, and how a survey's stars become a rating."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, fields, post_load, validate


@dataclass(frozen=True, slots=True)
class LhcRule:
    subjects: tuple[tuple[str, int], ...] = ()  # tag -> LHC subject id
    good_at: float = 0.6  # share of the stars that counts as a good rating
    rating_question: int = 1  # which star question N of the survey is the rating

    def subject(self, tag: str) -> int | None:
        return dict(self.subjects).get(tag)

    def tag_of(self, subject_id: int) -> str | None:
        return next((tag for tag, sid in self.subjects if sid == subject_id), None)


class LhcRuleSchema(Schema):
    class Meta:
        unknown = RAISE

    subjects = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=256)),
                           values=fields.Integer(strict=True, validate=validate.Range(min=1)))
    good_at = fields.Float(validate=validate.Range(min=0, max=1, min_inclusive=False))
    rating_question = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LhcRule:
        return LhcRule(**{**data, "subjects": tuple(sorted(data.get("subjects", {}).items()))})
