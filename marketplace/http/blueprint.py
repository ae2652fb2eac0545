"""The Blueprint every API route module makes its blueprint from."""

from __future__ import annotations

import flask_smorest

from marketplace.http.inputs import ArgumentsParser


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with marketplace.http.inputs. Every API route
    module makes its blueprint from this one: the parser is bound when a view is decorated."""

    ARGUMENTS_PARSER = ArgumentsParser()
