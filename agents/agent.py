"""An agent is a speaker with a role and a system prompt that sees the conversation from its own side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sim.messages import ChatMessage
from sim.records import Turn


@dataclass(frozen=True)
class Agent:
    """One participant: `speaker` names it in the transcript, `role` is its part (e.g. user or assistant)."""

    speaker: str
    role: str
    system_prompt: str
    opening: Optional[str] = None

    def view(self, transcript: list[Turn], name_speakers: bool = False) -> list[ChatMessage]:
        """The chat prompt for this agent's next turn: its own turns as `assistant`, everyone else's as `user`
        (prefixed with the speaker's name when `name_speakers`, so that a group's members can be told apart)."""
        messages = [ChatMessage("system", self.system_prompt)]
        if self.opening is not None:
            messages.append(ChatMessage("user", self.opening))
        for turn in transcript:
            side = "assistant" if turn.speaker == self.speaker else "user"
            content = f"{turn.speaker}: {turn.content}" if name_speakers and side == "user" else turn.content
            if messages[-1].role == side == "user":
                # Chat templates expect alternation; merge consecutive partner turns into one message.
                messages[-1] = ChatMessage("user", f"{messages[-1].content}\n\n{content}")
            else:
                messages.append(ChatMessage(side, content))
        return messages
