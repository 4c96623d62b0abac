console.log('paxkv cli: not built yet');
