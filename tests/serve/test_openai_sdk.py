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


def test_a_streamed_forward_carries_every_choice_and_its_tool_calls(served):
    """A chat passed to the teacher (serve.fallback_to_teacher) and streamed kept only the first
    choice's content: with tools the client got content "" and finish_reason "stop", with n=3 one
    choice. Read back by the SDK's own stream accumulator, it is the non-streamed answer."""
    from servers import fake_openai_server
    from servers.graduate_server import set_teacher

    tools = [{"type": "function", "function": {"name": "report", "description": "Report a verdict.", "parameters": {"type": "object", "properties": {"is_bad": {"type": "integer"}}}}}]
    messages = [{"role": "user", "content": "is 'you idiot' rude? call report"}]
    with fake_openai_server() as teacher:
        set_teacher(served, base_url=teacher.base_url)
        proj = Project.load(served)
        with ThreadServer(create_app(proj, options(proj, fallback_to_teacher=True))) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
            for extra in ({"tools": tools}, {"n": 3}, {"tools": tools, "n": 2}):
                plain = client.chat.completions.create(model="gpt-4-1106-preview", messages=messages, **extra)
                with client.chat.completions.stream(model="gpt-4-1106-preview", messages=messages, **extra) as stream:
                    streamed = stream.get_final_completion()
                assert len(streamed.choices) == len(plain.choices) == extra.get("n", 1)
                for s, p in zip(streamed.choices, plain.choices):
                    assert (s.index, s.finish_reason, s.message.content) == (p.index, p.finish_reason, p.message.content)
                    assert [(c.id, c.function.name, c.function.arguments) for c in s.message.tool_calls or []] == [(c.id, c.function.name, c.function.arguments) for c in p.message.tool_calls or []]
                if "tools" in extra:
                    call = streamed.choices[0].message.tool_calls[0]
                    assert streamed.choices[0].finish_reason == "tool_calls" and call.function.name == "report" and json.loads(call.function.arguments) == {"is_bad": 1}
                else:
                    assert all(json.loads(c.message.content) == {"is_bad": 1} for c in streamed.choices)
