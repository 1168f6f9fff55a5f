import asyncio, json, sys
from datetime import timedelta
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

@activity.defn
async def compose_greeting(name: str) -> str:
    return f"Hello, {name}!"

@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(timedelta(seconds=1))
        return greeting

async def main():
    client = await Client.connect("localhost:17233")
    async with Worker(client, task_queue="greeting", workflows=[GreetingWorkflow],
                      activities=[compose_greeting]):
        result = await client.execute_workflow(GreetingWorkflow.run, "World",
                                               id="greeting-1", task_queue="greeting")
        print(result)

if __name__ == "__main__":
    asyncio.run(main())
