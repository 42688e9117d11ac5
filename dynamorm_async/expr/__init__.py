"""Expressions: conditions, key conditions, update actions and projections.

Build them from entity field paths (``Payment.amount > 100``) or free paths
(:func:`attr`), then compile them for one request with :class:`ExpressionBuilder`,
which turns every name and value into a placeholder.
"""

from __future__ import annotations

from .compiler import MAX_EXPRESSION_LENGTH, ExpressionBuilder
from .conditions import (
    ATTRIBUTE_TYPES,
    And,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    CompareOp,
    Condition,
    Contains,
    Exists,
    In,
    Not,
    NotExists,
    Or,
    all_of,
    any_of,
)
from .keycond import KeyConditionParts, RangeOp, split_key_condition
from .operands import Encoder, Operand, Value
from .path import MAX_IN_OPERANDS, Attr, Path, Size, attr
from .update import (
    AddAction,
    Arithmetic,
    DeleteAction,
    IfNotExists,
    ListAppend,
    RemoveAction,
    SetAction,
    SetOperand,
    UpdateAction,
    if_not_exists,
)

__all__ = [
    "ATTRIBUTE_TYPES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_IN_OPERANDS",
    "AddAction",
    "And",
    "Arithmetic",
    "Attr",
    "AttributeType",
    "BeginsWith",
    "Between",
    "Compare",
    "CompareOp",
    "Condition",
    "Contains",
    "DeleteAction",
    "Encoder",
    "Exists",
    "ExpressionBuilder",
    "IfNotExists",
    "In",
    "KeyConditionParts",
    "ListAppend",
    "Not",
    "NotExists",
    "Operand",
    "Or",
    "Path",
    "RangeOp",
    "RemoveAction",
    "SetAction",
    "SetOperand",
    "Size",
    "UpdateAction",
    "Value",
    "all_of",
    "any_of",
    "attr",
    "if_not_exists",
    "split_key_condition",
]
