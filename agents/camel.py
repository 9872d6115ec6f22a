"""CAMEL AI-Society inception prompts (Li et al. 2023) for an AI user instructing an AI assistant."""

from __future__ import annotations

from agents.agent import Agent
from sim.camel import TASK_DONE

ASSISTANT_PROMPT = """Never forget you are a {assistant_role} and I am a {user_role}. Never flip roles! Never instruct me!
We share a common interest in collaborating to successfully complete a task.
You must help me to complete the task.
Here is the task: {task}. Never forget our task!
I must instruct you based on your expertise and my needs to complete the task.

I must give you one instruction at a time.
You must write a specific solution that appropriately solves the requested instruction and explain your solutions.
You must decline my instruction honestly if you cannot perform the instruction due to physical, moral, legal reasons or your capability and explain the reasons.
Unless I say the task is completed, you should always start with:

Solution: <YOUR_SOLUTION>

<YOUR_SOLUTION> should be very specific, include detailed explanations and provide preferable detailed implementations and examples and lists for task-solving.
Always end <YOUR_SOLUTION> with: Next request."""

USER_PROMPT = """Never forget you are a {user_role} and I am a {assistant_role}. Never flip roles! You will always instruct me.
We share a common interest in collaborating to successfully complete a task.
I must help you to complete the task.
Here is the task: {task}. Never forget our task!
You must instruct me based on my expertise and your needs to solve the task ONLY in the following two ways:

1. Instruct with a necessary input:
Instruction: <YOUR_INSTRUCTION>
Input: <YOUR_INPUT>

2. Instruct without any input:
Instruction: <YOUR_INSTRUCTION>
Input: None

The "Instruction" describes a task or question. The paired "Input" provides further context or information for the requested "Instruction".

You must give me one instruction at a time.
I must write a response that appropriately solves the requested instruction.
I must decline your instruction honestly if I cannot perform the instruction due to physical, moral, legal reasons or my capability and explain the reasons.
You should instruct me not ask me questions.
Now you must start to instruct me using the two ways described above.
Do not add anything else other than your instruction and the optional corresponding input!
Keep giving me instructions and necessary inputs until you think the task is completed.
When the task is completed, you must only reply with a single word {task_done}.
Never say {task_done} unless my responses have solved your task."""

USER_OPENING = "Now start to give me instructions one by one. Only reply with Instruction and Input."

TASK_SPECIFIER_PROMPT = """Here is a task that {assistant_role} will help {user_role} to complete: {task}.
Please make it more specific. Be creative and imaginative.
Please reply with the specified task in {word_limit} words or less. Do not add anything else."""

TASK_SPECIFIER_SYSTEM = "You can make a task more specific."


def camel_pair(assistant_role: str, user_role: str, task: str) -> tuple[Agent, Agent]:
    """The AI user and the AI assistant of one CAMEL role-play, in speaking order."""
    names = {"assistant_role": assistant_role, "user_role": user_role, "task": task, "task_done": TASK_DONE}
    user = Agent(
        speaker=user_role,
        role="user",
        system_prompt=USER_PROMPT.format(**names),
        opening=USER_OPENING,
    )
    assistant = Agent(speaker=assistant_role, role="assistant", system_prompt=ASSISTANT_PROMPT.format(**names))
    return user, assistant


def task_specifier(assistant_role: str, user_role: str, task: str, word_limit: int) -> Agent:
    """The agent that rewrites a task into a more specific one before the role-play starts."""
    prompt = TASK_SPECIFIER_PROMPT.format(
        assistant_role=assistant_role, user_role=user_role, task=task, word_limit=word_limit
    )
    return Agent(speaker="task_specifier", role="task_specifier", system_prompt=TASK_SPECIFIER_SYSTEM, opening=prompt)
