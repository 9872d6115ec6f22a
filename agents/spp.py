"""Solo-Performance-Prompting (Wang et al. 2024): one model voicing several personas, or one agent per persona."""

from __future__ import annotations

from agents.agent import Agent
from sim.spp import FINAL_ANSWER, FINISH, PARTICIPANTS

SPP_SYSTEM = "You are an AI Assistant that can simulate a group of experts collaborating on a task."
# The published method's structure: identify participants, let them discuss and criticise, then give the answer.
SPP_PROMPT = f"""When faced with a task, begin by identifying the participants who will contribute to solving it.
Then let them discuss in turns, each criticising and refining the others' ideas, until they reach a solution.
Write it in exactly this form:

{PARTICIPANTS} AI Assistant (you); <Persona 1>; <Persona 2>
AI Assistant (you): <how to approach the task>
<Persona 1>: <contribution>
<Persona 2>: <critique or contribution>
AI Assistant (you): <the agreed solution>
{FINISH}
{FINAL_ANSWER} <the answer only>

Here is an example.
Task: Use the numbers 6, 12, 1 and 1 with + - * / to make 24.
{PARTICIPANTS} AI Assistant (you); Math Expert
AI Assistant (you): Let us look for a product or sum that reaches 24.
Math Expert: 6 * (1 + 1) = 12, and 12 + 12 = 24.
AI Assistant (you): So the expression is 6 * (1 + 1) + 12 = 24.
{FINISH}
{FINAL_ANSWER} 6 * (1 + 1) + 12 = 24

Now, the task.
Task: {{task}}"""

LEADER = "AI Assistant"
LEADER_PROMPT = f"""You are the {LEADER}, leading a team ({{team}}) that solves a task together.
Task: {{task}}
Guide the discussion briefly. When the team has agreed, reply with "{FINAL_ANSWER} <the answer only>"."""
PERSONA_PROMPT = """You are {persona}, a member of a team ({team}) that solves a task together.
Task: {task}
Speak only as {persona}: contribute your expertise or criticise the others' ideas, in a few sentences."""
FINAL_REQUEST = f'Give the team\'s answer now, as "{FINAL_ANSWER} <the answer only>".'


def solo_performer(task: str) -> Agent:
    """The single agent that voices every persona in one response."""
    return Agent(speaker=LEADER, role="spp_response", system_prompt=SPP_SYSTEM, opening=SPP_PROMPT.format(task=task))


def persona_team(task: str, personas: list[str]) -> list[Agent]:
    """The leader and one agent per persona, in speaking order."""
    team = "; ".join([LEADER, *personas])
    leader = Agent(LEADER, LEADER, LEADER_PROMPT.format(team=team, task=task), opening=f"Task: {task}")
    members = [Agent(p, p, PERSONA_PROMPT.format(persona=p, team=team, task=task)) for p in personas]
    return [leader, *members]
