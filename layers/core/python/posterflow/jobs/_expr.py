"""A small builder for DynamoDB update and condition expressions.

Every attribute goes through a ``#name`` placeholder and every value through a ``:value``
placeholder, so reserved words (``status``, ``total``, ``name`` ...) never need special care.
"""

from __future__ import annotations

from typing import Any

from posterflow.jobs._ddb import av


class Expr:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._sets: list[str] = []
        self._adds: list[str] = []
        self._removes: list[str] = []
        self._n = 0

    def name(self, path: str) -> str:
        """``a.b`` → ``#a.#b`` (a nested map path), registering each part."""
        parts = []
        for part in path.split("."):
            placeholder = "#" + "".join(c if c.isalnum() else "_" for c in part)
            self.names[placeholder] = part
            parts.append(placeholder)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        self._n += 1
        placeholder = f":v{self._n}"
        self.values[placeholder] = av(value)
        return placeholder

    def set(self, path: str, value: Any) -> Expr:
        self._sets.append(f"{self.name(path)} = {self.value(value)}")
        return self

    def set_if_absent(self, path: str, value: Any) -> Expr:
        n = self.name(path)
        self._sets.append(f"{n} = if_not_exists({n}, {self.value(value)})")
        return self

    def add(self, path: str, amount: int) -> Expr:
        self._adds.append(f"{self.name(path)} {self.value(amount)}")
        return self

    def remove(self, path: str) -> Expr:
        self._removes.append(self.name(path))
        return self

    def update_expression(self) -> str:
        clauses = []
        if self._sets:
            clauses.append("SET " + ", ".join(self._sets))
        if self._adds:
            clauses.append("ADD " + ", ".join(self._adds))
        if self._removes:
            clauses.append("REMOVE " + ", ".join(self._removes))
        return " ".join(clauses)

    def params(self, condition: str | None = None) -> dict[str, Any]:
        """Keyword arguments for UpdateItem / a transaction ``Update`` (built after ``condition``
        has registered its own names and values)."""
        out: dict[str, Any] = {}
        update = self.update_expression()
        if update:
            out["UpdateExpression"] = update
        if condition:
            out["ConditionExpression"] = condition
        if self.names:
            out["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            out["ExpressionAttributeValues"] = dict(self.values)
        return out

    def in_(self, path: str, options: list[Any]) -> str:
        """``#path IN (:a, :b)`` condition text."""
        return f"{self.name(path)} IN ({', '.join(self.value(o) for o in options)})"
