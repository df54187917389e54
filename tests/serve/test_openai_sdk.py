"""The switch an app makes is its base_url: the official openai SDK, pointed at the server, sends
the request it sends the teacher and gets the teacher's answer format back, streamed or not."""

from __future__ import annotations

import json

import openai
import pytest

from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.teacher.parse import parse_answer
from servers.graduate_server import KEY, ThreadServer, options, prompt_messages


def test_openai_sdk_talks_to_the_student(served):
    proj = Project.load(served)
    student, _ = proj.best_student()
    app = create_app(proj, options(proj))
    with ThreadServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
        for text in ["you are a stupid idiot", "thank you for the helpful edit"]:
            expected = student.labels[int(student.predict_proba([text])[0].argmax())]
            reply = client.chat.completions.create(
                model="gpt-4-1106-preview", messages=prompt_messages(proj, text), temperature=0
            )
            content = reply.choices[0].message.content
            # parsed exactly as the app parses the teacher's answer today
            assert parse_answer(content, proj.spec.task.parse, proj.spec.task.labels).label == expected
            assert json.loads(content) == {"is_bad": 1 if expected == "bad" else 0}
            assert reply.model == "gpt-4-1106-preview" and reply.object == "chat.completion"
            assert reply.choices[0].finish_reason == "stop" and reply.usage.total_tokens > 0

            stream = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, text), stream=True)
            assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == content

        assert {m.id for m in client.models.list()} >= {"gpt-4-1106-preview"}

        with pytest.raises(openai.UnprocessableEntityError, match="prompt template"):
            client.chat.completions.create(model="gpt-4-1106-preview", messages=[{"role": "user", "content": "hello"}])
        with pytest.raises(openai.AuthenticationError, match="invalid API key"):
            openai.OpenAI(base_url=server.base_url, api_key="nope", max_retries=0).models.list()
